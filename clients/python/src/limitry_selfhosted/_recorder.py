"""Buffered recording: a background thread that sends queued events through
``/v1/events/batch``.

- Each event gets its idempotency key (and its timestamp) when it is queued, so a batch that
  is retried after a lost answer counts once: the service acknowledges the repeats as
  duplicates.
- A batch goes out when ``batch_size`` events are queued or ``flush_interval`` seconds after the
  oldest queued event, whichever comes first.
- A batch that fails to send (connection refused, timeout, 429, 5xx) is retried, the same
  events with the same keys, with backoff up to ``retry_cap`` seconds, for as long as the
  recorder runs: nothing queued is lost while the service comes back.
- A batch refused because one event is invalid (400 naming ``events[i]…``) drops that event,
  reports it to ``on_error`` and sends the rest. Any other 4xx drops the batch and reports it.
- The queue holds at most ``max_queue`` events. When full, ``overflow`` decides: ``"drop_newest"``
  (default: ``record`` returns False and the event is counted in ``stats.dropped`` and given to
  ``on_drop``), ``"drop_oldest"`` (the oldest queued event is dropped and reported instead) or
  ``"block"`` (``record`` waits for room).
- ``close()`` (also run at interpreter exit, and by ``with``) flushes what is queued, waiting up
  to ``close_timeout`` seconds; events still unsent then are counted in ``stats.lost``.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Mapping, Optional

from ._base import Request, retry_delay
from ._errors import APIConnectionError, APIStatusError, LimitryError, RateLimitError
from ._resources import event_body

if TYPE_CHECKING:
    from ._client import Limitry

log = logging.getLogger("limitry_selfhosted.recorder")

_EVENT_FIELD = re.compile(r"^events\[(\d+)\]")


@dataclass
class RecorderStats:
    queued: int = 0
    """Events accepted by ``record``."""
    sent: int = 0
    """Events the service acknowledged as newly recorded."""
    duplicates: int = 0
    """Events the service acknowledged as already recorded (a retry of a lost answer)."""
    dropped: int = 0
    """Events refused because the queue was full."""
    rejected: int = 0
    """Events the service refused (invalid) and that were dropped."""
    lost: int = 0
    """Events still unsent when ``close`` gave up."""
    retries: int = 0
    """Batch sends that failed and were retried."""


class BufferedRecorder:
    def __init__(self, client: "Limitry", *, batch_size: int = 500, flush_interval: float = 1.0,
                 max_queue: int = 100_000, overflow: str = "drop_newest",
                 on_drop: Optional[Callable[[Dict[str, Any]], None]] = None,
                 on_error: Optional[Callable[[Exception, List[Dict[str, Any]]], None]] = None,
                 retry_base: float = 0.2, retry_cap: float = 5.0, close_timeout: float = 30.0,
                 owns_client: bool = False) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be 1 to 1000")
        if overflow not in ("drop_newest", "drop_oldest", "block"):
            raise ValueError("overflow must be 'drop_newest', 'drop_oldest' or 'block'")
        self._client = client
        self._owns_client = owns_client
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.overflow = overflow
        self.on_drop = on_drop
        self.on_error = on_error
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.close_timeout = close_timeout
        self.stats = RecorderStats()
        self._queue: Deque[Dict[str, Any]] = deque()
        self._oldest_at: Optional[float] = None
        self._inflight = 0
        self._flush_requested = False
        self._closing = False
        self._abandon = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="limitry-recorder", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)

        def flush_at_exit() -> None:
            recorder = ref()
            if recorder is not None:
                recorder.close()

        self._atexit = flush_at_exit
        atexit.register(flush_at_exit)

    # -- the caller's side ----------------------------------------------------------------
    def record(self, *, customer_id: str, event_type: str, values: Optional[Mapping[str, float]] = None,
               dimensions: Optional[Mapping[str, str]] = None, properties: Any = None,
               timestamp: Optional[Any] = None, idempotency_key: Optional[str] = None) -> bool:
        """Queues one event; returns False when it was dropped because the queue was full."""
        event = event_body(customer_id, event_type, values, dimensions, properties,
                           timestamp or datetime.now(timezone.utc), idempotency_key)
        dropped: Optional[Dict[str, Any]] = None
        with self._cond:
            if self._closing:
                raise LimitryError("the recorder is closed")
            if len(self._queue) >= self.max_queue:
                if self.overflow == "block":
                    while len(self._queue) >= self.max_queue and not self._closing:
                        self._cond.wait()
                elif self.overflow == "drop_oldest":
                    dropped = self._queue.popleft()
                else:
                    dropped = event
            if dropped is not event:
                if not self._queue:
                    self._oldest_at = time.monotonic()
                self._queue.append(event)
                self.stats.queued += 1
                if len(self._queue) == 1 or len(self._queue) >= self.batch_size:
                    self._cond.notify_all()  # start the flush timer, or send a full batch
            if dropped is not None:
                self.stats.dropped += 1
        if dropped is not None:
            log.warning("limitry recorder queue full (%d events): dropped one event", self.max_queue)
            if self.on_drop is not None:
                self.on_drop(dropped)
        return dropped is not event

    def pending(self) -> int:
        """Events queued or being sent."""
        with self._cond:
            return len(self._queue) + self._inflight

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Sends everything queued now; True when all of it was acknowledged in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._queue or self._inflight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 0.5)
            self._flush_requested = False
            return True

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes (waiting up to ``timeout``, default ``close_timeout``) and stops the thread."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self.flush(self.close_timeout if timeout is None else timeout)
        with self._cond:
            self._closing = True
            self._abandon = True
            self._cond.notify_all()
        self._thread.join(timeout=10)
        with self._cond:
            lost = len(self._queue) + self._inflight
            self._queue.clear()
            self.stats.lost += lost
        if lost:
            log.error("limitry recorder closed with %d events unsent", lost)
        atexit.unregister(self._atexit)
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> "BufferedRecorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the thread's side ----------------------------------------------------------------
    def _next_batch(self) -> Optional[List[Dict[str, Any]]]:
        with self._cond:
            while True:
                if self._abandon:
                    return None
                if self._queue:
                    due = (self._oldest_at or 0) + self.flush_interval
                    if (len(self._queue) >= self.batch_size or self._flush_requested or self._closing
                            or time.monotonic() >= due):
                        break
                    self._cond.wait(max(due - time.monotonic(), 0.001))
                else:
                    if self._closing:
                        return None
                    self._cond.wait()
            batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
            self._oldest_at = time.monotonic() if self._queue else None
            self._inflight = len(batch)
            self._cond.notify_all()  # room for blocked producers
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._send(batch)
            with self._cond:
                self._inflight = 0
                self._cond.notify_all()

    def _send(self, batch: List[Dict[str, Any]]) -> None:
        attempt = 0
        while batch:
            try:
                response = self._client._transport.send(
                    Request("POST", "/v1/events/batch", body={"events": batch}))
            except (APIConnectionError, RateLimitError) as exc:
                self._retry_wait(attempt, getattr(exc, "retry_after", None), exc)
                attempt += 1
                if self._abandon:
                    with self._cond:
                        self._queue.extendleft(reversed(batch))
                    return
                continue
            except APIStatusError as exc:
                if exc.status_code >= 500:
                    self._retry_wait(attempt, None, exc)
                    attempt += 1
                    if self._abandon:
                        with self._cond:
                            self._queue.extendleft(reversed(batch))
                        return
                    continue
                index = _EVENT_FIELD.match(exc.field or "")
                if exc.status_code == 400 and index and int(index.group(1)) < len(batch):
                    bad = batch.pop(int(index.group(1)))
                    self._report(exc, [bad])
                    continue
                self._report(exc, batch)
                return
            except Exception as exc:  # never let the thread die with events queued
                log.exception("limitry recorder: unexpected error sending a batch")
                self._retry_wait(attempt, None, exc)
                attempt += 1
                if self._abandon:
                    with self._cond:
                        self._queue.extendleft(reversed(batch))
                    return
                continue
            data = response.json()
            with self._cond:
                self.stats.sent += int(data.get("count", 0))
                self.stats.duplicates += int(data.get("duplicates", 0))
            return

    def _retry_wait(self, attempt: int, retry_after: Optional[float], exc: Exception) -> None:
        with self._cond:
            self.stats.retries += 1
            if attempt == 0:
                log.warning("limitry recorder: batch send failed (%s); retrying", exc)
            self._cond.wait(retry_delay(attempt, retry_after, self.retry_base, self.retry_cap))

    def _report(self, exc: Exception, events: List[Dict[str, Any]]) -> None:
        with self._cond:
            self.stats.rejected += len(events)
        log.error("limitry recorder: the service refused %d event(s): %s", len(events), exc)
        if self.on_error is not None:
            self.on_error(exc, events)
