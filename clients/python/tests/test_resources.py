"""Every /v1 resource through the sync client, against the real service."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from limitry_selfhosted import Limitry, ValidationError, models


def test_project_is_the_keys_project(client: Limitry) -> None:
    project = client.project.retrieve()
    assert project.id.startswith("proj_")


def test_customers_create_get_update_list_delete(client: Limitry, customer: str) -> None:
    created = client.customers.create(external_id=customer, name="Ada", email="ada@example.com",
                                      metadata={"plan": "pro"}, timezone="Europe/Paris")
    assert created.id.startswith("cust_")
    assert created.external_id == customer
    assert created.metadata == {"plan": "pro"}
    assert client.customers.retrieve(customer).id == created.id
    assert client.customers.retrieve(created.id).external_id == customer

    updated = client.customers.update(customer, name="Ada L.")
    assert updated.name == "Ada L."
    assert updated.email == "ada@example.com"  # PUT changes only the fields given

    found = [c.external_id for c in client.customers.list(search=customer)]
    assert found == [customer]

    client.customers.delete(customer)
    with pytest.raises(Exception) as raised:
        client.customers.retrieve(customer)
    assert type(raised.value).__name__ == "NotFoundError"


def test_events_record_batch_and_list(client: Limitry, customer: str) -> None:
    one = client.events.record(customer_id=customer, event_type="api.call", values={"n": 1},
                               dimensions={"route": "/a"}, properties={"note": "x"})
    assert one.recorded and not one.duplicate
    batch = client.events.batch([
        {"customerId": customer, "eventType": "api.call", "values": {"n": 2}},
        models.EventInput(customer_id=customer, event_type="api.call", values={"n": 3}),
    ])
    assert batch.count == 2 and batch.duplicates == 0
    listed = list(client.events.list(customer_id=customer))
    assert sorted(e.values["n"] for e in listed) == [1, 2, 3]
    assert {e.id for e in listed} >= {one.id, *(r.id for r in batch.results)}


def test_meters_crud_and_query(client: Limitry, customer: str) -> None:
    meter = client.meters.create(name="Calls", aggregation="count", field="*",
                                 event_filter={"eventType": "meter.test", "dimensions": {"kind": "a"}})
    assert meter.id.startswith("mtr_")
    assert client.meters.retrieve(meter.id).name == "Calls"
    assert client.meters.update(meter.id, description="calls of kind a").description == "calls of kind a"
    assert meter.id in {m.id for m in client.meters.list()}

    client.events.batch([{"customerId": customer, "eventType": "meter.test", "dimensions": {"kind": k}}
                         for k in ["a", "a", "b"]])
    now = datetime.now(timezone.utc)
    result = client.meters.query(meter.id, start_date=now - timedelta(hours=1), end_date=now + timedelta(hours=1),
                                 customer_id=customer)
    assert result.value == 2

    client.meters.delete(meter.id)
    with pytest.raises(Exception) as raised:
        client.meters.retrieve(meter.id)
    assert type(raised.value).__name__ == "NotFoundError"


def test_limits_crud_and_check(client: Limitry, customer: str) -> None:
    meter = client.meters.create(name="Tokens", aggregation="sum", field="values.tokens",
                                 event_filter={"eventType": "limit.test"})
    limit = client.limits.create(name="Daily", meter_id=meter.id, limit_value=1000, period="day",
                                 customer_id=customer, fail_mode="closed")
    assert limit.id.startswith("lmt_")
    assert client.limits.retrieve(limit.id).limit_value == 1000
    assert [l.id for l in client.limits.list(customer_id=customer)] == [limit.id]

    check = client.limits.check(customer)
    assert check.allowed and not check.fallback
    [status] = check.limits
    assert (status.used, status.remaining, status.fail_mode) == (0, 1000, "closed")

    client.events.record(customer_id=customer, event_type="limit.test", values={"tokens": 600})
    assert client.limits.check(customer).limits[0].remaining == 400
    denied = client.limits.check(customer, requested=500)
    assert not denied.allowed and denied.reason == "limit_exceeded"

    client.limits.update(limit.id, limit_value=2000)
    assert client.limits.check(customer, requested=500).allowed
    client.limits.delete(limit.id)
    assert client.limits.check(customer).limits == []


def test_limits_consume_records_only_what_fits(client: Limitry, customer: str) -> None:
    meter = client.meters.create(name="Tokens", aggregation="sum", field="values.tokens",
                                 event_filter={"eventType": "consume.test"})
    limit = client.limits.create(name="Daily", meter_id=meter.id, limit_value=100, period="day",
                                 customer_id=customer)
    used = client.limits.consume(customer, event_type="consume.test", values={"tokens": 60},
                                 idempotency_key=f"{customer}-job-1")
    assert used.allowed and used.event_id and not used.duplicate
    assert used.limits[0].used == 60
    again = client.limits.consume(customer, event_type="consume.test", values={"tokens": 60},
                                  idempotency_key=f"{customer}-job-1")
    assert again.allowed and again.duplicate and again.event_id == used.event_id
    refused = client.limits.consume(customer, event_type="consume.test", values={"tokens": 41})
    assert not refused.allowed and refused.reason == "limit_exceeded" and refused.event_id is None
    assert client.limits.check(customer).limits[0].used == 60
    [entry] = client.limits.usage(limit.id, limit=10).data
    assert (entry.customer_external_id, entry.used, entry.remaining) == (customer, 60, 40)


def test_balances_credit_debit_reserve_commit_release_and_ledger(client: Limitry, customer: str) -> None:
    balance = client.balances.create(customer_id=customer, name="credits", initial_balance=1000)
    assert balance.id.startswith("bal_") and balance.current_balance == 1000
    assert client.balances.retrieve(balance.id).available_balance == 1000

    credit = client.balances.credit(customer_id=customer, name="credits", amount=500, description="top-up")
    assert credit.success and credit.balance.current_balance == 1500
    debit = client.balances.debit(balance_id=balance.id, amount=200, description="usage")
    assert debit.success and debit.balance.current_balance == 1300
    short = client.balances.debit(balance_id=balance.id, amount=10_000)
    assert not short.success and short.error == "insufficient_balance"
    assert client.balances.check(balance_id=balance.id, amount=1300).sufficient
    assert not client.balances.check(balance_id=balance.id, amount=1301).sufficient

    held = client.balances.reserve(balance_id=balance.id, amount=300, ttl_seconds=60)
    assert held.success and held.reservation is not None
    assert held.balance.available_balance == 1000
    committed = client.balances.commit(held.reservation.id, amount=250)
    assert committed.success and committed.balance.current_balance == 1050

    held2 = client.balances.reserve(customer_id=customer, name="credits", amount=100)
    released = client.balances.release(held2.reservation.id)
    assert released.success and released.balance.available_balance == 1050

    ledger = list(client.balances.transactions(balance.id))
    assert sum(t.amount for t in ledger) == 1050
    assert [b.id for b in client.customers.balances(customer)] == [balance.id]


def test_customer_usage_and_usage_summary(client: Limitry, customer: str) -> None:
    meter = client.meters.create(name="Usage tokens", aggregation="sum", field="values.tokens",
                                 event_filter={"eventType": "usage.test"})
    client.events.record(customer_id=customer, event_type="usage.test", values={"tokens": 42})
    usage = client.customers.usage(customer)
    assert any(item.meter_id == meter.id for item in usage.data)

    today = datetime.now(timezone.utc).date()
    summary = client.usage.summary(start_date=str(today), end_date=str(today + timedelta(days=1)), period="total")
    rows = [r for r in summary.data if r.meter_id == meter.id]
    assert [r.value for r in rows] == [42]
    csv = client.usage.summary_csv(start_date=str(today), end_date=str(today + timedelta(days=1)))
    assert meter.id in csv


def test_client_tokens_create_retrieve_and_revoke(client: Limitry, server, customer: str) -> None:
    import httpx

    created = client.client_tokens.create(customer_id=customer, context={"plan": "pro"},
                                          server_context={"credit_limit": 5}, ttl_seconds=600)
    assert created.id.startswith("ct_") and created.token.startswith("limitry_ct_")
    assert created.customer_id == customer
    # The browser's view: its own customer and the public context, never the server's.
    seen = httpx.get(f"{server.url}/v1/client/token", headers={"authorization": f"Bearer {created.token}"})
    assert seen.status_code == 200
    assert seen.json()["context"] == {"plan": "pro"} and "serverContext" not in seen.json()
    details = client.client_tokens.retrieve(created.id)
    assert details.server_context == {"credit_limit": 5} and details.status == "active"
    client.client_tokens.revoke(created.id)
    assert client.client_tokens.retrieve(created.id).status == "revoked"
    refused = httpx.get(f"{server.url}/v1/client/token", headers={"authorization": f"Bearer {created.token}"})
    assert refused.status_code == 401


def test_rotating_a_webhook_secret_keeps_the_old_one_signing_for_the_grace_hours_asked(client: Limitry) -> None:
    hook = client.webhooks.create(url="http://127.0.0.1:9/hook", enabled=False)
    try:
        before = datetime.now(timezone.utc)
        two_hours = client.webhooks.rotate_secret(hook.id, grace_hours=2)
        assert two_hours.secret != hook.secret
        expires = two_hours.previous_secret_expires_at
        assert expires is not None and timedelta(hours=2, seconds=-1) <= expires - before < timedelta(hours=2, minutes=1)
        default = client.webhooks.rotate_secret(hook.id).previous_secret_expires_at
        assert default is not None and timedelta(hours=24, seconds=-1) <= default - before < timedelta(hours=24, minutes=1)
        assert client.webhooks.rotate_secret(hook.id, grace_hours=0).previous_secret_expires_at is None
        with pytest.raises(ValidationError) as refused:
            client.webhooks.rotate_secret(hook.id, grace_hours=721)
        assert refused.value.field == "graceHours"
    finally:
        client.webhooks.delete(hook.id)


def test_webhooks_crud_test_deliveries_and_redeliver(client: Limitry) -> None:
    from harness import WebhookReceiver

    receiver = WebhookReceiver()
    try:
        hook = client.webhooks.create(url=receiver.url, event_types=["limit.exceeded"], description="sink")
        assert hook.id.startswith("whk_") and hook.secret.startswith("whsec_")
        assert client.webhooks.retrieve(hook.id).description == "sink"
        assert client.webhooks.update(hook.id, description="receiver").description == "receiver"
        assert hook.id in {w.id for w in client.webhooks.list()}
        rotated = client.webhooks.rotate_secret(hook.id)
        assert rotated.secret.startswith("whsec_") and rotated.secret != hook.secret

        client.webhooks.test(hook.id)
        [first] = receiver.wait_for(1)
        assert first["body"]["type"] == "webhook.test"
        [delivery] = list(client.webhooks.deliveries(hook.id))
        client.webhooks.redeliver(hook.id, delivery.id)
        again = receiver.wait_for(2)[1]
        assert again["headers"]["webhook-id"] == first["headers"]["webhook-id"]

        assert client.webhooks.update(hook.id, enabled=False).enabled is False
        client.webhooks.delete(hook.id)
        with pytest.raises(Exception) as raised:
            client.webhooks.retrieve(hook.id)
        assert type(raised.value).__name__ == "NotFoundError"
    finally:
        receiver.close()
