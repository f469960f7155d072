"""A wrapper for the official ``anthropic`` client (``Anthropic``, ``AsyncAnthropic``).

    from anthropic import Anthropic
    from limitry_selfhosted.integrations.anthropic import wrap_anthropic

    claude = wrap_anthropic(Anthropic(), limitry, customer_id="acme")
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=512, messages=[...])

Each ``messages.create`` first checks the customer's limits (dimensions ``provider`` and
``model`` plus your own); when denied it raises ``LimitExceededError`` (or returns
``fallback``) and Anthropic is not called. After the call it records the reported
``input_tokens``, ``output_tokens``, ``total_tokens`` (and cache token counts when present).
With ``stream=True`` the usage comes from ``message_start`` and the final ``message_delta``
and is recorded when the stream ends. ``messages.stream(...)`` (the SDK's streaming helper) is
guarded too: the check runs when the ``with`` block is entered (a denial raises
``LimitExceededError`` even with a ``fallback``) and the usage is recorded when it is left.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from .._errors import LimitExceededError
from ._core import AsyncStreamProxy, Fallback, Guard, StreamProxy, token_values

__all__ = ["wrap_anthropic", "anthropic_usage_values"]


def anthropic_usage_values(usage: Any) -> Dict[str, int]:
    return token_values(getattr(usage, "input_tokens", 0), getattr(usage, "output_tokens", 0),
                        cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", None),
                        cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", None))


class _StreamUsage:
    """Usage assembled from stream events: input at ``message_start``, output (cumulative) at
    each ``message_delta``."""

    def __init__(self) -> None:
        self.input_tokens: Optional[int] = None
        self.output_tokens: Optional[int] = None
        self.cache_creation_input_tokens: Optional[int] = None
        self.cache_read_input_tokens: Optional[int] = None

    def on_event(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            usage = event.message.usage
            self.input_tokens = usage.input_tokens
            self.output_tokens = usage.output_tokens
            self.cache_creation_input_tokens = getattr(usage, "cache_creation_input_tokens", None)
            self.cache_read_input_tokens = getattr(usage, "cache_read_input_tokens", None)
        elif kind == "message_delta" and getattr(event, "usage", None) is not None:
            self.output_tokens = event.usage.output_tokens
            if getattr(event.usage, "input_tokens", None):
                self.input_tokens = event.usage.input_tokens

    def values(self) -> Optional[Dict[str, int]]:
        return None if self.input_tokens is None else anthropic_usage_values(self)


def _snapshot_values(stream: Any) -> Optional[Dict[str, int]]:
    message = getattr(stream, "current_message_snapshot", None)
    usage = getattr(message, "usage", None)
    return anthropic_usage_values(usage) if usage is not None else None


class _GuardedStreamManager:
    """``messages.stream(...)``: check on entering, record the final snapshot's usage on leaving."""

    def __init__(self, messages: Any, kwargs: Dict[str, Any], guard: Guard) -> None:
        self._messages = messages
        self._kwargs = kwargs
        self._guard = guard
        self._model = kwargs.get("model")
        self._manager: Any = None
        self._stream: Any = None

    def _check_result(self, check: Any) -> None:
        if not check.allowed:
            raise LimitExceededError(check)

    def _check_args(self) -> Dict[str, Any]:
        g = self._guard
        return dict(dimensions=g.dims(self._model), requested=g.requested, fail_mode=g.fail_mode)

    def __enter__(self) -> Any:
        self._check_result(self._guard.limitry.limits.check(self._guard.customer_id, **self._check_args()))
        self._manager = self._messages.stream(**self._kwargs)
        self._stream = self._manager.__enter__()
        return self._stream

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._manager.__exit__(*exc)
        finally:
            values = _snapshot_values(self._stream)
            if values is not None:
                self._guard.record(self._model, values)

    async def __aenter__(self) -> Any:
        result = self._guard.limitry.limits.check(self._guard.customer_id, **self._check_args())
        self._check_result(await result if hasattr(result, "__await__") else result)
        self._manager = self._messages.stream(**self._kwargs)
        self._stream = await self._manager.__aenter__()
        return self._stream

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._manager.__aexit__(*exc)
        finally:
            values = _snapshot_values(self._stream)
            if values is not None:
                await self._guard.arecord(self._model, values)


class _Messages:
    def __init__(self, messages: Any, guard: Guard) -> None:
        self._messages = messages
        self._guard = guard

    def _guard_for(self, kwargs: Dict[str, Any]) -> Guard:
        customer = kwargs.pop("limitry_customer_id", None)
        return self._guard.with_options(customer_id=customer) if customer else self._guard

    def create(self, **kwargs: Any) -> Any:
        guard = self._guard_for(kwargs)
        model = kwargs.get("model")
        allowed, fallback = guard.check(model)
        if not allowed:
            return fallback
        response = self._messages.create(**kwargs)
        if kwargs.get("stream"):
            usage = _StreamUsage()

            def done() -> None:
                values = usage.values()
                if values is not None:
                    guard.record(model, values)

            return StreamProxy(response, usage.on_event, done)
        guard.record(model, anthropic_usage_values(response.usage))
        return response

    def stream(self, **kwargs: Any) -> _GuardedStreamManager:
        guard = self._guard_for(kwargs)
        return _GuardedStreamManager(self._messages, kwargs, guard)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._messages, name)


class _AsyncMessages(_Messages):
    async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
        guard = self._guard_for(kwargs)
        model = kwargs.get("model")
        allowed, fallback = await guard.acheck(model)
        if not allowed:
            return fallback
        response = await self._messages.create(**kwargs)
        if kwargs.get("stream"):
            usage = _StreamUsage()

            async def done() -> None:
                values = usage.values()
                if values is not None:
                    await guard.arecord(model, values)

            return AsyncStreamProxy(response, usage.on_event, done)
        await guard.arecord(model, anthropic_usage_values(response.usage))
        return response


class LimitedAnthropic:
    """The wrapped client: ``messages.create`` and ``messages.stream`` are guarded, everything
    else passes through."""

    def __init__(self, client: Any, guard: Guard) -> None:
        self._client = client
        self._guard = guard
        is_async = type(client).__name__.startswith("Async")
        self.messages = (_AsyncMessages if is_async else _Messages)(client.messages, guard)

    def for_customer(self, customer_id: str) -> "LimitedAnthropic":
        return LimitedAnthropic(self._client, self._guard.with_options(customer_id=customer_id))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def wrap_anthropic(client: Any, limitry: Any, *, customer_id: str, event_type: str = "llm.completion",
                   dimensions: Optional[Mapping[str, str]] = None, requested: Optional[float] = None,
                   fail_mode: Optional[str] = None, fallback: Fallback = None,
                   recorder: Any = None) -> LimitedAnthropic:
    """Wraps an ``anthropic.Anthropic``/``AsyncAnthropic`` client (``limitry`` sync or async)."""
    guard = Guard(limitry, customer_id=customer_id, provider="anthropic", event_type=event_type,
                  dimensions=dimensions, requested=requested, fail_mode=fail_mode, fallback=fallback,
                  recorder=recorder)
    return LimitedAnthropic(client, guard)
