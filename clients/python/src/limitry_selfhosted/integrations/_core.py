"""What the provider wrappers share: the check before a call and the record after it."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Mapping, Optional, Union

from .._errors import LimitExceededError

Fallback = Union[None, Any, Callable[[Any], Any]]


class Guard:
    """Check → call → record around one provider call, for one customer."""

    def __init__(self, limitry: Any, *, customer_id: str, provider: str, event_type: str = "llm.completion",
                 dimensions: Optional[Mapping[str, str]] = None, requested: Optional[float] = None,
                 fail_mode: Optional[str] = None, fallback: Fallback = None, recorder: Any = None) -> None:
        self.limitry = limitry
        self.customer_id = customer_id
        self.provider = provider
        self.event_type = event_type
        self.dimensions = dict(dimensions or {})
        self.requested = requested
        self.fail_mode = fail_mode
        self.fallback = fallback
        self.recorder = recorder

    def with_options(self, **changes: Any) -> "Guard":
        options = dict(customer_id=self.customer_id, provider=self.provider, event_type=self.event_type,
                       dimensions=self.dimensions, requested=self.requested, fail_mode=self.fail_mode,
                       fallback=self.fallback, recorder=self.recorder)
        options.update({k: v for k, v in changes.items() if v is not None})
        return Guard(self.limitry, **options)

    def dims(self, model: Optional[str]) -> Dict[str, str]:
        dims = {"provider": self.provider, **self.dimensions}
        if model:
            dims["model"] = model
        return dims

    def _denied(self, check: Any) -> Any:
        if self.fallback is None:
            raise LimitExceededError(check)
        return self.fallback(check) if callable(self.fallback) else self.fallback

    # sync -----------------------------------------------------------------------------
    def check(self, model: Optional[str]) -> Any:
        """The check's answer, or raises ``LimitExceededError``; returns ``(allowed, fallback)``."""
        check = self.limitry.limits.check(self.customer_id, dimensions=self.dims(model), requested=self.requested,
                                          fail_mode=self.fail_mode)
        if check.allowed:
            return True, None
        return False, self._denied(check)

    def record(self, model: Optional[str], values: Mapping[str, float]) -> None:
        kwargs = dict(customer_id=self.customer_id, event_type=self.event_type, values=dict(values),
                      dimensions=self.dims(model))
        if self.recorder is not None:
            self.recorder.record(**kwargs)
        else:
            self.limitry.events.record(**kwargs)

    # async ----------------------------------------------------------------------------
    async def acheck(self, model: Optional[str]) -> Any:
        result = self.limitry.limits.check(self.customer_id, dimensions=self.dims(model), requested=self.requested,
                                           fail_mode=self.fail_mode)
        check = await result if asyncio.iscoroutine(result) else result
        if check.allowed:
            return True, None
        return False, self._denied(check)

    async def arecord(self, model: Optional[str], values: Mapping[str, float]) -> None:
        kwargs = dict(customer_id=self.customer_id, event_type=self.event_type, values=dict(values),
                      dimensions=self.dims(model))
        if self.recorder is not None:
            self.recorder.record(**kwargs)
            return
        result = self.limitry.events.record(**kwargs)
        if asyncio.iscoroutine(result):
            await result


def token_values(input_tokens: Optional[int], output_tokens: Optional[int], **extra: Optional[int]) -> Dict[str, int]:
    values = {"input_tokens": int(input_tokens or 0), "output_tokens": int(output_tokens or 0)}
    values["total_tokens"] = values["input_tokens"] + values["output_tokens"]
    values.update({k: int(v) for k, v in extra.items() if v})
    return values


class StreamProxy:
    """Wraps a provider's stream: yields its items unchanged and calls ``done`` once at its end."""

    def __init__(self, stream: Any, on_item: Callable[[Any], None], done: Callable[[], None]) -> None:
        self._stream = stream
        self._on_item = on_item
        self._done = done
        self._finished = False

    def __iter__(self) -> Any:
        try:
            for item in self._stream:
                self._on_item(item)
                yield item
        finally:
            self._finish()

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._done()

    def __enter__(self) -> "StreamProxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class AsyncStreamProxy:
    def __init__(self, stream: Any, on_item: Callable[[Any], None], done: Callable[[], Any]) -> None:
        self._stream = stream
        self._on_item = on_item
        self._done = done
        self._finished = False

    async def __aiter__(self) -> Any:
        try:
            async for item in self._stream:
                self._on_item(item)
                yield item
        finally:
            if not self._finished:
                self._finished = True
                await self._done()

    async def __aenter__(self) -> "AsyncStreamProxy":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            await close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
