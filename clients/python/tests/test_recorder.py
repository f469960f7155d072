"""The buffered recorder: batches by size and time, survives a restart of the service without
losing or doubling events, bounds its queue."""

from __future__ import annotations

import signal
import threading
import time
from datetime import datetime, timedelta, timezone

from limitry_selfhosted import Limitry


def _totals(client: Limitry, meter_count: str, meter_sum: str, customer: str):
    now = datetime.now(timezone.utc)
    start, end = now - timedelta(days=1), now + timedelta(days=1)
    count = client.meters.query(meter_count, start_date=start, end_date=end, customer_id=customer).value
    total = client.meters.query(meter_sum, start_date=start, end_date=end, customer_id=customer).value
    return count, total


def test_ten_thousand_events_across_a_restart_are_stored_exactly_once(own_server) -> None:
    srv = own_server
    customer = "bulk"
    n = 10_000
    with Limitry(srv.api_key, base_url=srv.url, max_retries=0) as c:
        counter = c.meters.create(name="n", aggregation="count", field="*", event_filter={"eventType": "bulk"})
        summer = c.meters.create(name="sum", aggregation="sum", field="values.i", event_filter={"eventType": "bulk"})
        recorder = c.recorder(batch_size=250, flush_interval=0.2, retry_base=0.05, retry_cap=0.5)

        restarted = threading.Event()

        def restart_midway() -> None:
            while recorder.stats.sent < n // 3:
                time.sleep(0.005)
            srv.stop(signal.SIGKILL)  # answers in flight are lost; their batches are resent
            time.sleep(1.0)
            srv.start()
            restarted.set()

        thread = threading.Thread(target=restart_midway)
        thread.start()
        for i in range(n):
            assert recorder.record(customer_id=customer, event_type="bulk", values={"i": i})
        thread.join(timeout=60)
        assert restarted.is_set()
        recorder.close(timeout=60)

        assert recorder.stats.retries > 0  # the restart was felt
        assert recorder.stats.lost == 0 and recorder.stats.dropped == 0
        assert recorder.stats.sent + recorder.stats.duplicates == n  # every event acknowledged once as new
        count, total = _totals(c, counter.id, summer.id, customer)
        assert count == n
        assert total == n * (n - 1) // 2  # each i once


def test_batches_go_out_by_time(client: Limitry, customer: str) -> None:
    recorder = client.recorder(batch_size=1000, flush_interval=0.2)
    recorder.record(customer_id=customer, event_type="timed")
    deadline = time.monotonic() + 5
    while recorder.stats.sent < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder.stats.sent == 1 and recorder.pending() == 0
    recorder.close()


def test_full_queue_drops_newest_and_reports_it(server) -> None:
    dropped = []
    from harness import free_port

    with Limitry(server.api_key, base_url=f"http://127.0.0.1:{free_port()}", max_retries=0) as c:
        recorder = c.recorder(max_queue=3, batch_size=1000, flush_interval=60, on_drop=dropped.append)
        accepted = [recorder.record(customer_id="q", event_type="x", values={"i": i}) for i in range(5)]
        assert accepted == [True, True, True, False, False]
        assert recorder.stats.dropped == 2 and [e["values"]["i"] for e in dropped] == [3, 4]
        recorder.close(timeout=0.3)
        assert recorder.stats.lost == 3  # nothing listens: reported, not silently gone


def test_invalid_event_is_reported_and_the_rest_recorded(client: Limitry, customer: str) -> None:
    errors = []
    recorder = client.recorder(batch_size=10, flush_interval=0.1, on_error=lambda e, evs: errors.append((e, evs)))
    recorder.record(customer_id=customer, event_type="ok", values={"i": 1})
    recorder.record(customer_id=customer, event_type="ok", timestamp="not a date")
    recorder.record(customer_id=customer, event_type="ok", values={"i": 3})
    recorder.close()
    assert recorder.stats.sent == 2 and recorder.stats.rejected == 1
    assert errors[0][0].field == "events[1].timestamp"
    assert len(list(client.events.list(customer_id=customer))) == 2


def test_queued_events_are_flushed_at_interpreter_exit(server, customer: str) -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        from limitry_selfhosted import Limitry
        recorder = Limitry({server.api_key!r}, base_url={server.url!r}).recorder(flush_interval=60)
        for i in range(25):
            recorder.record(customer_id={customer!r}, event_type="exit.test", values={{"i": i}})
        # no close(): the atexit hook sends what is queued
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with Limitry(server.api_key, base_url=server.url) as c:
        assert len(list(c.events.list(customer_id=customer))) == 25


async def test_async_client_recorder(aclient, client: Limitry, customer: str) -> None:
    recorder = aclient.recorder(batch_size=10, flush_interval=0.1)
    for i in range(15):
        assert recorder.record(customer_id=customer, event_type="async.rec", values={"i": i})
    recorder.close()
    assert recorder.stats.sent == 15
    assert len(list(client.events.list(customer_id=customer))) == 15
