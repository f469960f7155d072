"""Fail mode: with the service stopped, checks answer by the configured mode; once it is back,
normal answers again."""

from __future__ import annotations

import signal

from limitry_selfhosted import AsyncLimitry, Limitry


def test_fail_open_and_closed_while_the_service_is_down(own_server) -> None:
    srv = own_server
    with Limitry(srv.api_key, base_url=srv.url, max_retries=1, backoff_base=0.01, timeout=2) as c:
        meter = c.meters.create(name="Tokens", aggregation="sum", field="values.tokens")
        c.limits.create(name="cap", meter_id=meter.id, limit_value=100, period="day",
                        customer_id="hard-capped", fail_mode="closed")
        c.limits.create(name="soft", meter_id=meter.id, limit_value=100, period="day",
                        customer_id="soft-capped", fail_mode="open")
        assert c.limits.check("hard-capped").allowed
        assert c.limits.check("soft-capped").allowed

        srv.stop(signal.SIGKILL)

        # remembered from each customer's last successful check
        hard = c.limits.check("hard-capped")
        assert (hard.allowed, hard.fallback, hard.fail_mode) == (False, True, "closed")
        assert hard.reason == "service_unavailable"
        soft = c.limits.check("soft-capped")
        assert (soft.allowed, soft.fallback, soft.fail_mode) == (True, True, "open")
        # never checked: the client default (open)
        unknown = c.limits.check("never-seen")
        assert (unknown.allowed, unknown.fallback) == (True, True)
        # the call's own mode wins over everything
        assert not c.limits.check("soft-capped", fail_mode="closed").allowed
        assert c.limits.check("hard-capped", fail_mode="open").allowed

        srv.start()
        back = c.limits.check("hard-capped")
        assert back.allowed and not back.fallback
        assert back.limits[0].fail_mode == "closed"

    with Limitry(srv.api_key, base_url=srv.url, fail_mode="closed", max_retries=0) as strict:
        srv.stop()
        answer = strict.limits.check("never-seen")
        assert (answer.allowed, answer.fallback, answer.fail_mode) == (False, True, "closed")
        srv.start()
        assert strict.limits.check("never-seen").allowed


def test_5xx_answers_fall_back_too(server, proxy) -> None:
    proxy.actions = ["503"]
    with Limitry(server.api_key, base_url=proxy.url, max_retries=0, fail_mode="closed") as c:
        answer = c.limits.check("anyone")
    assert answer.fallback and not answer.allowed


async def test_async_client_falls_back(own_server) -> None:
    srv = own_server
    async with AsyncLimitry(srv.api_key, base_url=srv.url, max_retries=0, fail_mode="closed") as c:
        assert (await c.limits.check("x")).allowed
        srv.stop()
        down = await c.limits.check("x")
        assert down.fallback and not down.allowed
        srv.start()
        assert not (await c.limits.check("x")).fallback


def test_a_hung_service_falls_back_within_the_check_timeout(server, proxy) -> None:
    import time

    proxy.actions = ["sleep:3", "sleep:3"]
    with Limitry(server.api_key, base_url=proxy.url, check_timeout=0.3, max_retries=1, backoff_base=0.01,
                 fail_mode="closed") as c:
        started = time.monotonic()
        answer = c.limits.check("anyone")
    assert answer.fallback and not answer.allowed and "time" in (answer.error or "")
    assert time.monotonic() - started < 1.5
