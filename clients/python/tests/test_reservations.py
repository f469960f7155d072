"""Reservations on limits (``mode: reserve``) and the reservation context managers, against the
real service."""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid

import pytest

from limitry_selfhosted import AsyncLimitry, ConflictError, LimitExceededError, Limitry


def _tokens_limit(client: Limitry, customer: str, limit_value: int, period: str = "day"):
    event_type = f"reserve.{uuid.uuid4().hex[:8]}"
    meter = client.meters.create(name="Tokens", aggregation="sum", field="values.tokens",
                                 event_filter={"eventType": event_type})
    limit = client.limits.create(name="Tokens", meter_id=meter.id, limit_value=limit_value, period=period,
                                 customer_id=customer)
    return event_type, limit


def _status(client: Limitry, customer: str):
    [status] = client.limits.check(customer).limits
    return status


def test_reserve_holds_then_commit_records_the_actual_usage(client: Limitry, customer: str) -> None:
    event_type, _ = _tokens_limit(client, customer, 10_000)
    reserved = client.limits.reserve(customer, requested=2000, ttl_seconds=120)
    assert reserved.allowed and reserved.reservation_id.startswith("lres_")
    assert reserved.expires_at is not None
    held = _status(client, customer)
    assert (held.used, held.held) == (2000, 2000)

    committed = client.limits.commit_reservation(
        reserved.reservation_id, event={"eventType": event_type, "values": {"tokens": 1234}})
    assert committed.status == "committed" and committed.event_id
    after = _status(client, customer)
    assert (after.used, after.held, after.remaining) == (1234, 0, 10_000 - 1234)
    assert [e.id for e in client.events.list(customer_id=customer)] == [committed.event_id]

    fetched = client.limits.get_reservation(reserved.reservation_id)
    assert fetched.status == "committed"
    assert [e.kind for e in fetched.entries] == ["reserved", "committed"]
    with pytest.raises(ConflictError):
        client.limits.release_reservation(reserved.reservation_id)


def test_release_frees_the_capacity_a_reserve_held(client: Limitry, customer: str) -> None:
    _tokens_limit(client, customer, 1000)
    reserved = client.limits.reserve(customer, requested=800)
    assert reserved.allowed
    assert not client.limits.check(customer, requested=300).allowed
    refused = client.limits.reserve(customer, requested=300)
    assert not refused.allowed and refused.reason == "limit_exceeded" and refused.reservation_id is None

    extended = client.limits.extend_reservation(reserved.reservation_id, 900)
    assert extended.status == "held" and extended.expires_at > reserved.expires_at

    released = client.limits.release_reservation(reserved.reservation_id)
    assert released.status == "released" and released.event_id is None
    assert client.limits.check(customer, requested=300).allowed
    assert (_status(client, customer).used, _status(client, customer).held) == (0, 0)
    assert list(client.events.list(customer_id=customer)) == []


def test_a_retried_reserve_with_one_idempotency_key_holds_once(client: Limitry, customer: str) -> None:
    _tokens_limit(client, customer, 1000)
    key = f"{customer}-job-7"
    first = client.limits.reserve(customer, requested=400, idempotency_key=key)
    again = client.limits.reserve(customer, requested=400, idempotency_key=key)
    assert again.reservation_id == first.reservation_id
    assert _status(client, customer).held == 400


def test_context_manager_commits_the_actual_usage(client: Limitry, customer: str) -> None:
    event_type, _ = _tokens_limit(client, customer, 10_000)
    with client.limits.reservation(customer, requested=2000) as held:
        assert held.id.startswith("lres_") and held.check.allowed
        assert _status(client, customer).held == 2000
        held.commit(event_type=event_type, values={"tokens": 1500})
    assert held.reservation.status == "committed"
    status = _status(client, customer)
    assert (status.used, status.held) == (1500, 0)


def test_context_manager_releases_when_left_without_commit(client: Limitry, customer: str) -> None:
    _tokens_limit(client, customer, 1000)
    with client.limits.reservation(customer, requested=1000) as held:
        assert not client.limits.check(customer).allowed
    assert client.limits.get_reservation(held.id).status == "released"
    assert _status(client, customer).used == 0
    assert client.limits.check(customer, requested=1000).allowed


def test_context_manager_releases_on_exception_and_reraises(client: Limitry, customer: str) -> None:
    _tokens_limit(client, customer, 1000)
    with pytest.raises(RuntimeError, match="model call failed"):
        with client.limits.reservation(customer, requested=700) as held:
            assert _status(client, customer).held == 700
            raise RuntimeError("model call failed")
    assert client.limits.get_reservation(held.id).status == "released"
    status = _status(client, customer)
    assert (status.used, status.held, status.remaining) == (0, 0, 1000)
    assert list(client.events.list(customer_id=customer)) == []


def test_a_refused_reservation_raises_limit_exceeded_and_runs_nothing(client: Limitry, customer: str) -> None:
    _tokens_limit(client, customer, 1000)
    ran = []
    with pytest.raises(LimitExceededError) as raised:
        with client.limits.reservation(customer, requested=1001):
            ran.append(True)
    assert ran == []
    assert raised.value.reason == "limit_exceeded"
    assert raised.value.check.reservation_id is None
    assert _status(client, customer).held == 0


def test_a_concurrency_limit_of_two_lets_two_context_managers_in_at_once(client: Limitry, customer: str) -> None:
    meter = client.meters.create(name="Agents", aggregation="count", field="*",
                                 event_filter={"eventType": f"agent.{uuid.uuid4().hex[:8]}"})
    client.limits.create(name="Agents at once", meter_id=meter.id, limit_value=2, period="concurrent",
                         customer_id=customer)
    with client.limits.reservation(customer, ttl_seconds=60) as first:
        with client.limits.reservation(customer, ttl_seconds=60) as second:
            assert first.id != second.id
            with pytest.raises(LimitExceededError):
                with client.limits.reservation(customer, ttl_seconds=60):
                    pass
        # one left: a slot is free again
        with client.limits.reservation(customer, ttl_seconds=60) as third:
            assert _status(client, customer).held == 2
            assert third.id not in (first.id, second.id)
    assert _status(client, customer).held == 0


async def test_async_context_managers_admit_only_two_of_five_at_once(aclient: AsyncLimitry, customer: str) -> None:
    meter = await aclient.meters.create(name="Agents", aggregation="count", field="*",
                                        event_filter={"eventType": f"agent.{uuid.uuid4().hex[:8]}"})
    await aclient.limits.create(name="Agents at once", meter_id=meter.id, limit_value=2, period="concurrent",
                                customer_id=customer)
    attempted = 0
    all_attempted = asyncio.Event()
    in_flight = 0
    most_in_flight = 0

    async def agent() -> bool:
        nonlocal attempted, in_flight, most_in_flight
        try:
            async with aclient.limits.reservation(customer, ttl_seconds=60):
                in_flight += 1
                most_in_flight = max(most_in_flight, in_flight)
                attempted += 1
                if attempted == 5:
                    all_attempted.set()
                await all_attempted.wait()  # hold the slot until every agent has tried
                in_flight -= 1
                return True
        except LimitExceededError:
            attempted += 1
            if attempted == 5:
                all_attempted.set()
            return False

    admitted = await asyncio.gather(*(agent() for _ in range(5)))
    assert sorted(admitted) == [False, False, False, True, True]
    assert most_in_flight == 2
    [status] = (await aclient.limits.check(customer)).limits
    assert status.held == 0  # every admitted agent released its slot on leaving


async def test_async_context_manager_commits_and_releases_on_exception(aclient: AsyncLimitry, customer: str) -> None:
    event_type = f"reserve.{uuid.uuid4().hex[:8]}"
    meter = await aclient.meters.create(name="Tokens", aggregation="sum", field="values.tokens",
                                        event_filter={"eventType": event_type})
    await aclient.limits.create(name="Tokens", meter_id=meter.id, limit_value=1000, period="day",
                                customer_id=customer)
    with pytest.raises(ValueError):
        async with aclient.limits.reservation(customer, requested=900) as failed:
            raise ValueError("tool crashed")
    assert (await aclient.limits.get_reservation(failed.id)).status == "released"

    async with aclient.limits.reservation(customer, requested=900) as held:
        await held.commit(event_type=event_type, values={"tokens": 950})
    [status] = (await aclient.limits.check(customer)).limits
    assert (status.used, status.held) == (950, 0)


def test_a_reserve_retried_after_a_lost_answer_holds_once(server, proxy, client: Limitry, customer: str) -> None:
    _tokens_limit(client, customer, 1000)
    proxy.actions = ["forward_then_503"]
    with Limitry(server.api_key, base_url=proxy.url, backoff_base=0.01) as c:
        reserved = c.limits.reserve(customer, requested=400)
    assert reserved.allowed and not reserved.fallback
    keys = {s["headers"].get("Idempotency-Key") for s in proxy.seen}
    assert len(proxy.seen) == 2 and len(keys) == 1 and None not in keys
    assert _status(client, customer).held == 400


def test_a_reservation_decided_by_the_fail_mode_holds_nothing_and_commits_as_an_event(
        server, proxy, client: Limitry, customer: str) -> None:
    event_type, _ = _tokens_limit(client, customer, 1000)
    with Limitry(server.api_key, base_url=proxy.url, max_retries=0) as c:
        proxy.actions = ["503"]
        with pytest.raises(LimitExceededError) as raised:
            with c.limits.reservation(customer, requested=10, fail_mode="closed"):
                pass
        assert raised.value.reason == "service_unavailable"

        proxy.actions = ["503"]
        with c.limits.reservation(customer, requested=10, fail_mode="open") as held:
            assert held.check.fallback and held.id is None
            held.commit(event_type=event_type, values={"tokens": 12})
    status = _status(client, customer)
    assert (status.used, status.held) == (12, 0)


def _release_failure_warnings(caplog: pytest.LogCaptureFixture, reservation_id: str):
    return [r for r in caplog.records
            if r.name == "limitry_selfhosted.reservations" and r.levelno == logging.WARNING
            and reservation_id in r.getMessage()]


def test_a_failed_release_on_an_exception_is_logged_and_the_exception_goes_on(
        server, proxy, client: Limitry, customer: str, caplog: pytest.LogCaptureFixture) -> None:
    _tokens_limit(client, customer, 1000)
    with Limitry(server.api_key, base_url=proxy.url, max_retries=0) as c:
        with pytest.raises(RuntimeError, match="model call failed") as raised:
            with c.limits.reservation(customer, requested=700) as held:
                proxy.actions = ["503"]  # the release, on the way out
                raise RuntimeError("model call failed")
    [warning] = _release_failure_warnings(caplog, held.id)
    assert "lapses at its expiry" in warning.getMessage()
    if sys.version_info >= (3, 11):
        assert any(held.id in note for note in raised.value.__notes__)
    assert client.limits.get_reservation(held.id).status == "held"
    assert _status(client, customer).held == 700


def test_a_failed_release_on_leaving_quietly_is_logged(
        server, proxy, client: Limitry, customer: str, caplog: pytest.LogCaptureFixture) -> None:
    _tokens_limit(client, customer, 1000)
    with Limitry(server.api_key, base_url=proxy.url, max_retries=0) as c:
        with c.limits.reservation(customer, requested=300) as held:
            proxy.actions = ["503"]
    assert len(_release_failure_warnings(caplog, held.id)) == 1
    assert client.limits.get_reservation(held.id).status == "held"


async def test_an_async_failed_release_on_an_exception_is_logged_and_the_exception_goes_on(
        server, proxy, aclient: AsyncLimitry, customer: str, caplog: pytest.LogCaptureFixture) -> None:
    meter = await aclient.meters.create(name="Tokens", aggregation="sum", field="values.tokens",
                                        event_filter={"eventType": f"reserve.{uuid.uuid4().hex[:8]}"})
    await aclient.limits.create(name="Tokens", meter_id=meter.id, limit_value=1000, period="day",
                                customer_id=customer)
    async with AsyncLimitry(server.api_key, base_url=proxy.url, max_retries=0) as c:
        with pytest.raises(ValueError, match="tool crashed") as raised:
            async with c.limits.reservation(customer, requested=900) as held:
                proxy.actions = ["503"]
                raise ValueError("tool crashed")
    assert len(_release_failure_warnings(caplog, held.id)) == 1
    if sys.version_info >= (3, 11):
        assert any(held.id in note for note in raised.value.__notes__)
    assert (await aclient.limits.get_reservation(held.id)).status == "held"
