"""Auto-pagination and the typed errors, against the real service."""

from __future__ import annotations

import pytest

from limitry_selfhosted import (APIConnectionError, APITimeoutError, AuthenticationError, ConflictError, Limitry,
                                NotFoundError, RateLimitError, ValidationError)


def test_list_walks_every_page(client: Limitry, customer: str) -> None:
    client.events.batch([{"customerId": customer, "eventType": "page.test", "values": {"i": i}} for i in range(23)])
    pager = client.events.list(customer_id=customer, limit=5)
    first = pager.first_page()
    assert len(first.data) == 5 and first.has_more and first.next_cursor
    pages = list(pager.pages())
    assert [len(p.data) for p in pages] == [5, 5, 5, 5, 3]
    values = [e.values["i"] for e in client.events.list(customer_id=customer, limit=5)]
    assert sorted(values) == list(range(23))  # every event once, across pages


async def test_async_list_walks_every_page(aclient, customer: str) -> None:
    await aclient.events.batch([{"customerId": customer, "eventType": "page.test"} for _ in range(12)])
    ids = [e.id async for e in aclient.events.list(customer_id=customer, limit=5)]
    assert len(ids) == len(set(ids)) == 12


def test_authentication_error(server) -> None:
    with Limitry("limitry_sk_not_a_real_key", base_url=server.url) as bad:
        with pytest.raises(AuthenticationError) as raised:
            bad.project.retrieve()
    assert raised.value.status_code == 401 and raised.value.code == "invalid_api_key"


def test_not_found_error(client: Limitry) -> None:
    with pytest.raises(NotFoundError) as raised:
        client.meters.retrieve("mtr_doesnotexist")
    assert raised.value.code == "meter_not_found"


def test_validation_error_names_the_field(client: Limitry, customer: str) -> None:
    with pytest.raises(ValidationError) as raised:
        client.events.batch([{"customerId": customer, "eventType": "ok"}, {"customerId": customer}])
    assert raised.value.field == "events[1].eventType"
    with pytest.raises(ValidationError) as raised:
        client.limits.create(name="bad", meter_id="mtr_x", limit_value=-1, period="day", customer_id=customer)
    assert raised.value.field == "limitValue"


def test_conflict_error(client: Limitry, customer: str) -> None:
    client.customers.create(external_id=customer)
    with pytest.raises(ConflictError) as raised:
        client.customers.create(external_id=customer)
    assert raised.value.status_code == 409


def test_rate_limit_error_carries_retry_after(server, proxy) -> None:
    # The service has no per-key rate limit configured by default; the proxy answers 429 the
    # way the service's contract says it does.
    proxy.actions = ["429:120"]
    with Limitry(server.api_key, base_url=proxy.url) as c:
        with pytest.raises(RateLimitError) as raised:
            c.project.retrieve()
    assert raised.value.retry_after == 120.0  # too long to wait for: raised at once
    assert len(proxy.seen) == 1


def test_429_is_retried_after_retry_after(server, proxy) -> None:
    import time

    proxy.actions = ["429:1"]
    with Limitry(server.api_key, base_url=proxy.url) as c:
        started = time.monotonic()
        assert c.project.retrieve().id.startswith("proj_")
    assert time.monotonic() - started >= 1.0
    assert len(proxy.seen) == 2


def test_connection_error_when_nothing_listens() -> None:
    from harness import free_port

    with Limitry("limitry_sk_x", base_url=f"http://127.0.0.1:{free_port()}", max_retries=1, backoff_base=0.01) as c:
        with pytest.raises(APIConnectionError) as raised:
            c.project.retrieve()
    assert not isinstance(raised.value, APITimeoutError)


def test_timeout_error(server, proxy) -> None:
    proxy.actions = ["sleep:1.5"]
    with Limitry(server.api_key, base_url=proxy.url, timeout=0.3, max_retries=0) as c:
        with pytest.raises(APITimeoutError):
            c.project.retrieve()


def test_environment_configuration(server, monkeypatch) -> None:
    monkeypatch.setenv("LIMITRY_API_KEY", server.api_key)
    monkeypatch.setenv("LIMITRY_BASE_URL", server.url)
    with Limitry() as c:
        assert c.project.retrieve().id.startswith("proj_")
    monkeypatch.delenv("LIMITRY_API_KEY")
    with pytest.raises(ValueError):
        Limitry()
