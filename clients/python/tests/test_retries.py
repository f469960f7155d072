"""Retries: a write whose answer was lost is sent again with the same idempotency key and
counts once."""

from __future__ import annotations


from limitry_selfhosted import Limitry


def _count(client: Limitry, customer: str) -> int:
    return len(list(client.events.list(customer_id=customer)))


def test_same_event_sent_twice_counts_once(client: Limitry, customer: str) -> None:
    first = client.events.record(customer_id=customer, event_type="dup.test", values={"n": 1},
                                 idempotency_key="req-1")
    second = client.events.record(customer_id=customer, event_type="dup.test", values={"n": 1},
                                  idempotency_key="req-1")
    assert second.duplicate and second.id == first.id
    assert _count(client, customer) == 1


def test_record_retried_after_lost_answer_counts_once(server, proxy, client: Limitry, customer: str) -> None:
    proxy.actions = ["forward_then_503"]
    with Limitry(server.api_key, base_url=proxy.url, backoff_base=0.01) as c:
        answer = c.events.record(customer_id=customer, event_type="retry.test", values={"n": 1})
    assert answer.duplicate  # the retry found the first attempt recorded
    keys = [s["body"] for s in proxy.seen]
    assert len(keys) == 2 and keys[0] == keys[1]  # the same bytes, the same generated key
    assert _count(client, customer) == 1


def test_batch_retried_after_dropped_connection_counts_once(server, proxy, client: Limitry, customer: str) -> None:
    proxy.actions = ["forward_then_drop"]
    with Limitry(server.api_key, base_url=proxy.url, backoff_base=0.01) as c:
        answer = c.events.batch([{"customerId": customer, "eventType": "retry.test"} for _ in range(5)])
    assert answer.duplicates == 5 and answer.count == 0
    assert _count(client, customer) == 5


def test_debit_retried_after_timeout_moves_money_once(server, proxy, client: Limitry, customer: str) -> None:
    balance = client.balances.create(customer_id=customer, name="credits", initial_balance=100)
    proxy.actions = ["sleep:1.0"]
    with Limitry(server.api_key, base_url=proxy.url, timeout=0.5, backoff_base=0.01) as c:
        c.balances.debit(balance_id=balance.id, amount=30, description="job")
    seen = [s for s in proxy.seen if s["path"] == "/v1/balances/debit"]
    assert len(seen) == 2
    assert seen[0]["headers"]["Idempotency-Key"] == seen[1]["headers"]["Idempotency-Key"]
    import time

    time.sleep(0.8)  # the first, slow attempt lands too
    assert client.balances.retrieve(balance.id).current_balance == 70


def test_5xx_is_retried_then_raised(server, proxy) -> None:
    from limitry_selfhosted import InternalServerError
    import pytest

    proxy.actions = ["503", "503", "503"]
    with Limitry(server.api_key, base_url=proxy.url, max_retries=2, backoff_base=0.01) as c:
        with pytest.raises(InternalServerError):
            c.project.retrieve()
    assert len(proxy.seen) == 3


def test_create_is_not_resent_after_an_ambiguous_failure(server, proxy, client: Limitry) -> None:
    # The service does not deduplicate creates, so a create whose answer was lost is not sent again.
    import pytest
    from limitry_selfhosted import InternalServerError

    proxy.actions = ["forward_then_503"]
    with Limitry(server.api_key, base_url=proxy.url, backoff_base=0.01) as c:
        with pytest.raises(InternalServerError):
            c.meters.create(name="once", aggregation="count", field="*")
    assert len(proxy.seen) == 1
