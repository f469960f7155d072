"""A wrapper for the official ``openai`` client (``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI`` and
any OpenAI-compatible endpoint through ``base_url``).

    from openai import OpenAI
    from limitry_selfhosted.integrations.openai import wrap_openai

    ai = wrap_openai(OpenAI(), limitry, customer_id="acme")
    ai.chat.completions.create(model="gpt-4o", messages=[...])

Each ``chat.completions.create`` and ``responses.create`` first checks the customer's limits (dimensions ``provider`` and
``model`` plus your own); when denied it raises ``LimitExceededError`` (or returns
``fallback``) and OpenAI is not called. After the call it records one event with the reported
``input_tokens``, ``output_tokens`` and ``total_tokens``. Streamed calls ask OpenAI for usage
in the final chunk (``stream_options.include_usage``); streamed responses carry it in their
``response.completed`` event. Either is recorded when the stream ends.
Pass ``limitry_customer_id=`` to a single call to meter another customer.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ._core import AsyncStreamProxy, Fallback, Guard, StreamProxy, token_values

__all__ = ["wrap_openai", "openai_usage_values", "responses_usage_values"]


def openai_usage_values(usage: Any) -> Optional[Dict[str, int]]:
    if usage is None:
        return None
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return token_values(getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0),
                        cached_input_tokens=cached)


def responses_usage_values(usage: Any) -> Optional[Dict[str, int]]:
    """Usage of the Responses API (``input_tokens``/``output_tokens``)."""
    if usage is None:
        return None
    details = getattr(usage, "input_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return token_values(getattr(usage, "input_tokens", 0), getattr(usage, "output_tokens", 0),
                        cached_input_tokens=cached)


def _response_event_usage(event: Any) -> Any:
    if getattr(event, "type", None) in ("response.completed", "response.incomplete"):
        return getattr(getattr(event, "response", None), "usage", None)
    return None


def _prepare(kwargs: Dict[str, Any], guard: Guard) -> Guard:
    customer = kwargs.pop("limitry_customer_id", None)
    if kwargs.get("stream"):
        options = dict(kwargs.get("stream_options") or {})
        options.setdefault("include_usage", True)
        kwargs["stream_options"] = options
    return guard.with_options(customer_id=customer) if customer else guard


class _Completions:
    def __init__(self, completions: Any, guard: Guard) -> None:
        self._completions = completions
        self._guard = guard

    def create(self, **kwargs: Any) -> Any:
        guard = _prepare(kwargs, self._guard)
        model = kwargs.get("model")
        allowed, fallback = guard.check(model)
        if not allowed:
            return fallback
        response = self._completions.create(**kwargs)
        if kwargs.get("stream"):
            seen: Dict[str, Any] = {}

            def on_chunk(chunk: Any) -> None:
                if getattr(chunk, "usage", None) is not None:
                    seen["usage"] = chunk.usage

            def done() -> None:
                values = openai_usage_values(seen.get("usage"))
                if values is not None:
                    guard.record(model, values)

            return StreamProxy(response, on_chunk, done)
        values = openai_usage_values(getattr(response, "usage", None))
        if values is not None:
            guard.record(model, values)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._completions, name)


class _AsyncCompletions(_Completions):
    async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
        guard = _prepare(kwargs, self._guard)
        model = kwargs.get("model")
        allowed, fallback = await guard.acheck(model)
        if not allowed:
            return fallback
        response = await self._completions.create(**kwargs)
        if kwargs.get("stream"):
            seen: Dict[str, Any] = {}

            def on_chunk(chunk: Any) -> None:
                if getattr(chunk, "usage", None) is not None:
                    seen["usage"] = chunk.usage

            async def done() -> None:
                values = openai_usage_values(seen.get("usage"))
                if values is not None:
                    await guard.arecord(model, values)

            return AsyncStreamProxy(response, on_chunk, done)
        values = openai_usage_values(getattr(response, "usage", None))
        if values is not None:
            await guard.arecord(model, values)
        return response


class _Responses:
    def __init__(self, responses: Any, guard: Guard) -> None:
        self._responses = responses
        self._guard = guard

    def create(self, **kwargs: Any) -> Any:
        customer = kwargs.pop("limitry_customer_id", None)
        guard = self._guard.with_options(customer_id=customer) if customer else self._guard
        model = kwargs.get("model")
        allowed, fallback = guard.check(model)
        if not allowed:
            return fallback
        response = self._responses.create(**kwargs)
        if kwargs.get("stream"):
            seen: Dict[str, Any] = {}

            def on_event(event: Any) -> None:
                usage = _response_event_usage(event)
                if usage is not None:
                    seen["usage"] = usage

            def done() -> None:
                values = responses_usage_values(seen.get("usage"))
                if values is not None:
                    guard.record(model, values)

            return StreamProxy(response, on_event, done)
        values = responses_usage_values(getattr(response, "usage", None))
        if values is not None:
            guard.record(model, values)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._responses, name)


class _AsyncResponses(_Responses):
    async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
        customer = kwargs.pop("limitry_customer_id", None)
        guard = self._guard.with_options(customer_id=customer) if customer else self._guard
        model = kwargs.get("model")
        allowed, fallback = await guard.acheck(model)
        if not allowed:
            return fallback
        response = await self._responses.create(**kwargs)
        if kwargs.get("stream"):
            seen: Dict[str, Any] = {}

            def on_event(event: Any) -> None:
                usage = _response_event_usage(event)
                if usage is not None:
                    seen["usage"] = usage

            async def done() -> None:
                values = responses_usage_values(seen.get("usage"))
                if values is not None:
                    await guard.arecord(model, values)

            return AsyncStreamProxy(response, on_event, done)
        values = responses_usage_values(getattr(response, "usage", None))
        if values is not None:
            await guard.arecord(model, values)
        return response


class _Chat:
    def __init__(self, chat: Any, guard: Guard, is_async: bool) -> None:
        self._chat = chat
        self.completions = (_AsyncCompletions if is_async else _Completions)(chat.completions, guard)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chat, name)


class LimitedOpenAI:
    """The wrapped client: ``chat.completions.create`` and ``responses.create`` are guarded,
    everything else passes through."""

    def __init__(self, client: Any, guard: Guard) -> None:
        self._client = client
        self._guard = guard
        is_async = type(client).__name__.startswith("Async")
        self.chat = _Chat(client.chat, guard, is_async)
        self.responses = (_AsyncResponses if is_async else _Responses)(client.responses, guard)

    def for_customer(self, customer_id: str) -> "LimitedOpenAI":
        return LimitedOpenAI(self._client, self._guard.with_options(customer_id=customer_id))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def wrap_openai(client: Any, limitry: Any, *, customer_id: str, event_type: str = "llm.completion",
                dimensions: Optional[Mapping[str, str]] = None, requested: Optional[float] = None,
                fail_mode: Optional[str] = None, fallback: Fallback = None, recorder: Any = None) -> LimitedOpenAI:
    """Wraps an ``openai.OpenAI``/``AsyncOpenAI`` client (``limitry`` sync or async to match).

    ``fallback``: returned instead of raising ``LimitExceededError`` when denied (a callable
    gets the check's answer). ``recorder``: a ``BufferedRecorder`` to record through.
    """
    guard = Guard(limitry, customer_id=customer_id, provider="openai", event_type=event_type,
                  dimensions=dimensions, requested=requested, fail_mode=fail_mode, fallback=fallback,
                  recorder=recorder)
    return LimitedOpenAI(client, guard)
