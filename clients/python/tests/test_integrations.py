"""The OpenAI, Anthropic and LangChain integrations through the official client libraries,
pointed at a fake provider on loopback: usage recorded equals what the provider reported, and a
denied check means the provider sees no request."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import anthropic
import openai
import pytest

from limitry_selfhosted import LimitExceededError, Limitry
from limitry_selfhosted.integrations.anthropic import wrap_anthropic
from limitry_selfhosted.integrations.openai import wrap_openai


def recorded(client: Limitry, customer: str):
    events = list(client.events.list(customer_id=customer, event_type="llm.completion"))
    return [(e.values, e.dimensions) for e in events]


def deny(client: Limitry, customer: str) -> None:
    """A limit the customer is already over."""
    meter = client.meters.create(name="Deny", aggregation="count", field="*",
                                 event_filter={"eventType": f"deny.{customer}"})
    client.limits.create(name="deny", meter_id=meter.id, limit_value=1, period="day", customer_id=customer)
    client.events.record(customer_id=customer, event_type=f"deny.{customer}")
    assert not client.limits.check(customer).allowed


def test_openai_chat_completion_records_reported_usage(client, provider, customer) -> None:
    ai = wrap_openai(openai.OpenAI(api_key="sk-fake", base_url=f"{provider.url}/v1"), client, customer_id=customer)
    response = ai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert response.choices[0].message.content.startswith("Hello")
    [(values, dims)] = recorded(client, customer)
    assert values == {"input_tokens": 123, "output_tokens": 45, "total_tokens": 168}
    assert dims == {"model": "gpt-4o", "provider": "openai"}


def test_openai_stream_records_usage_from_the_final_chunk(client, provider, customer) -> None:
    ai = wrap_openai(openai.OpenAI(api_key="sk-fake", base_url=f"{provider.url}/v1"), client, customer_id=customer)
    stream = ai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                        stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the stream."
    assert provider.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    [(values, dims)] = recorded(client, customer)
    assert values == {"input_tokens": 123, "output_tokens": 45, "total_tokens": 168}
    assert dims["model"] == "gpt-4o-mini"


def test_openai_responses_api_records_usage_streamed_or_not(client, provider, customer) -> None:
    ai = wrap_openai(openai.OpenAI(api_key="sk-fake", base_url=f"{provider.url}/v1"), client, customer_id=customer)
    response = ai.responses.create(model="gpt-4.1", input="hi")
    assert response.output_text.startswith("Hello")
    stream = ai.responses.create(model="gpt-4.1", input="hi", stream=True)
    text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    assert text == "Hello from the stream."
    assert recorded(client, customer) == [({"input_tokens": 123, "output_tokens": 45, "total_tokens": 168},
                                           {"model": "gpt-4.1", "provider": "openai"})] * 2
    deny(client, customer)
    before = len(provider.requests)
    with pytest.raises(LimitExceededError):
        ai.responses.create(model="gpt-4.1", input="hi")
    assert len(provider.requests) == before


def test_openai_denied_check_never_reaches_the_provider(client, provider, customer) -> None:
    deny(client, customer)
    ai = wrap_openai(openai.OpenAI(api_key="sk-fake", base_url=f"{provider.url}/v1"), client, customer_id=customer)
    with pytest.raises(LimitExceededError) as raised:
        ai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.check.allowed is False
    assert provider.requests == []
    fallback = wrap_openai(openai.OpenAI(api_key="sk-fake", base_url=f"{provider.url}/v1"), client,
                           customer_id=customer, fallback="Upgrade your plan")
    assert fallback.chat.completions.create(model="gpt-4o", messages=[]) == "Upgrade your plan"
    assert provider.requests == []


def test_openai_limit_on_tokens_blocks_after_usage(client, provider, customer) -> None:
    meter = client.meters.create(name="LLM tokens", aggregation="sum", field="values.total_tokens",
                                 event_filter={"eventType": "llm.completion"})
    client.limits.create(name="tokens", meter_id=meter.id, limit_value=200, period="day", customer_id=customer)
    ai = wrap_openai(openai.OpenAI(api_key="sk-fake", base_url=f"{provider.url}/v1"), client, customer_id=customer)
    ai.chat.completions.create(model="gpt-4o", messages=[])  # 168 of 200
    ai.chat.completions.create(model="gpt-4o", messages=[])  # 336: over
    with pytest.raises(LimitExceededError):
        ai.chat.completions.create(model="gpt-4o", messages=[])
    assert len(provider.requests) == 2


async def test_async_openai_stream(aclient, client, provider, customer) -> None:
    ai = wrap_openai(openai.AsyncOpenAI(api_key="sk-fake", base_url=f"{provider.url}/v1"), aclient,
                     customer_id=customer)
    stream = await ai.chat.completions.create(model="gpt-4o", messages=[], stream=True)
    chunks = [c async for c in stream]
    assert chunks[-1].usage.prompt_tokens == 123
    [(values, _)] = recorded(client, customer)
    assert values["total_tokens"] == 168


def test_anthropic_message_records_reported_usage(client, provider, customer) -> None:
    claude = wrap_anthropic(anthropic.Anthropic(api_key="sk-ant-fake", base_url=provider.url), client,
                            customer_id=customer)
    message = claude.messages.create(model="claude-test-large", max_tokens=100,
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text.startswith("Hello")
    [(values, dims)] = recorded(client, customer)
    assert values == {"input_tokens": 123, "output_tokens": 45, "total_tokens": 168}
    assert dims == {"model": "claude-test-large", "provider": "anthropic"}


def test_anthropic_stream_records_usage(client, provider, customer) -> None:
    claude = wrap_anthropic(anthropic.Anthropic(api_key="sk-ant-fake", base_url=provider.url), client,
                            customer_id=customer)
    stream = claude.messages.create(model="claude-test-small", max_tokens=100, stream=True,
                                    messages=[{"role": "user", "content": "hi"}])
    text = "".join(e.delta.text for e in stream if e.type == "content_block_delta")
    assert text == "Hello stream."
    [(values, _)] = recorded(client, customer)
    assert values == {"input_tokens": 123, "output_tokens": 45, "total_tokens": 168}


def test_anthropic_stream_helper_is_guarded_and_records(client, provider, customer) -> None:
    claude = wrap_anthropic(anthropic.Anthropic(api_key="sk-ant-fake", base_url=provider.url), client,
                            customer_id=customer)
    with claude.messages.stream(model="claude-test-small", max_tokens=100,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "".join(stream.text_stream) == "Hello stream."
    [(values, _)] = recorded(client, customer)
    assert values == {"input_tokens": 123, "output_tokens": 45, "total_tokens": 168}
    deny(client, customer)
    before = len(provider.requests)
    with pytest.raises(LimitExceededError):
        with claude.messages.stream(model="claude-test-small", max_tokens=100, messages=[]):
            pass
    assert len(provider.requests) == before


async def test_async_anthropic_stream_helper(aclient, client, provider, customer) -> None:
    claude = wrap_anthropic(anthropic.AsyncAnthropic(api_key="sk-ant-fake", base_url=provider.url), aclient,
                            customer_id=customer)
    async with claude.messages.stream(model="claude-test-small", max_tokens=100, messages=[]) as stream:
        text = "".join([t async for t in stream.text_stream])
    assert text == "Hello stream."
    [(values, _)] = recorded(client, customer)
    assert values["output_tokens"] == 45


def test_anthropic_denied_check_never_reaches_the_provider(client, provider, customer) -> None:
    deny(client, customer)
    claude = wrap_anthropic(anthropic.Anthropic(api_key="sk-ant-fake", base_url=provider.url), client,
                            customer_id=customer)
    with pytest.raises(LimitExceededError):
        claude.messages.create(model="claude-test-large", max_tokens=10, messages=[])
    assert provider.requests == []


async def test_async_anthropic(aclient, client, provider, customer) -> None:
    claude = wrap_anthropic(anthropic.AsyncAnthropic(api_key="sk-ant-fake", base_url=provider.url), aclient,
                            customer_id=customer)
    await claude.messages.create(model="claude-test-large", max_tokens=10, messages=[])
    [(values, _)] = recorded(client, customer)
    assert values["input_tokens"] == 123


def test_langchain_handler_checks_and_records(client, provider, customer) -> None:
    from langchain_openai import ChatOpenAI

    from limitry_selfhosted.integrations.langchain import LimitryCallbackHandler

    handler = LimitryCallbackHandler(client, customer_id=customer)
    model = ChatOpenAI(model="gpt-4o", api_key="sk-fake", base_url=f"{provider.url}/v1", max_retries=0)
    reply = model.invoke("hi", config={"callbacks": [handler]})
    assert reply.content.startswith("Hello")
    chunks = list(model.stream("hi", config={"callbacks": [handler]}, stream_usage=True))
    assert "".join(c.content for c in chunks) == "Hello from the stream."
    events = recorded(client, customer)
    assert [v for v, _ in events] == [{"input_tokens": 123, "output_tokens": 45, "total_tokens": 168}] * 2
    assert all(d == {"model": "gpt-4o", "provider": "langchain"} for _, d in events)

    deny(client, customer)
    before = len(provider.requests)
    with pytest.raises(LimitExceededError):
        model.invoke("hi", config={"callbacks": [handler]})
    assert len(provider.requests) == before


def test_guard_runs_only_when_allowed_and_records_what_fn_returns(client, customer) -> None:
    meter = client.meters.create(name="Guard", aggregation="sum", field="values.units",
                                 event_filter={"eventType": "guarded"})
    client.limits.create(name="g", meter_id=meter.id, limit_value=10, period="day", customer_id=customer)
    calls = []

    def work() -> dict:
        calls.append(1)
        return {"units": 6}

    assert client.guard(customer, work, event_type="guarded", requested=6) == {"units": 6}
    with pytest.raises(LimitExceededError):
        client.guard(customer, work, event_type="guarded", requested=6)  # 6 + 6 > 10
    assert len(calls) == 1
    now = datetime.now(timezone.utc)
    used = client.meters.query(meter.id, start_date=now - timedelta(hours=1), end_date=now + timedelta(hours=1),
                               customer_id=customer)
    assert used.value == 6


async def test_langchain_handler_with_ainvoke(client, provider, customer) -> None:
    from langchain_openai import ChatOpenAI

    from limitry_selfhosted.integrations.langchain import LimitryCallbackHandler

    handler = LimitryCallbackHandler(client, customer_id=customer)
    model = ChatOpenAI(model="gpt-4o", api_key="sk-fake", base_url=f"{provider.url}/v1", max_retries=0)
    await model.ainvoke("hi", config={"callbacks": [handler]})
    assert [v for v, _ in recorded(client, customer)] == [{"input_tokens": 123, "output_tokens": 45, "total_tokens": 168}]
    deny(client, customer)
    before = len(provider.requests)
    with pytest.raises(LimitExceededError):
        await model.ainvoke("hi", config={"callbacks": [handler]})
    assert len(provider.requests) == before


def test_azure_openai_through_the_same_wrapper(client, provider, customer) -> None:
    azure = openai.AzureOpenAI(api_key="azure-fake", azure_endpoint=provider.url, api_version="2024-10-21")
    ai = wrap_openai(azure, client, customer_id=customer)
    ai.chat.completions.create(model="my-gpt4o-deployment", messages=[{"role": "user", "content": "hi"}])
    assert provider.requests[-1]["path"].startswith("/openai/deployments/my-gpt4o-deployment/chat/completions")
    [(values, dims)] = recorded(client, customer)
    assert values["total_tokens"] == 168 and dims["model"] == "my-gpt4o-deployment"
