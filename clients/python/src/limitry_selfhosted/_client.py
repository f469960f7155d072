"""The clients: ``Limitry`` (sync) and ``AsyncLimitry`` (asyncio), both on httpx.

Configuration comes from the arguments, else ``LIMITRY_API_KEY`` and ``LIMITRY_BASE_URL``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, TypeVar

import httpx

from ._base import (DEFAULT_CHECK_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, FailModeMemory, check_fail_mode, env_api_key,
                    env_base_url)
from ._errors import LimitExceededError
from ._resources import (BalancesResource, ClientTokensResource, CustomersResource, EventsResource, LimitsResource,
                         MetersResource, ProjectResource, UsageResource, WebhooksResource)
from ._resources_async import (AsyncBalancesResource, AsyncClientTokensResource, AsyncCustomersResource,
                               AsyncEventsResource, AsyncLimitsResource, AsyncMetersResource, AsyncProjectResource,
                               AsyncUsageResource, AsyncWebhooksResource)
from ._transport import AsyncTransport, SyncTransport

R = TypeVar("R")


class _Settings:
    def __init__(self, api_key: Optional[str], base_url: Optional[str], timeout: Any, max_retries: int,
                 fail_mode: str, backoff_base: float, backoff_cap: float) -> None:
        self.api_key = env_api_key(api_key)
        self.base_url = env_base_url(base_url)
        self.timeout = timeout
        self.max_retries = max_retries
        self.fail_mode = check_fail_mode(fail_mode) or "open"
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap


def _usage_of(result: Any, usage: Optional[Callable[[Any], Mapping[str, float]]]) -> Mapping[str, float]:
    values = usage(result) if usage is not None else result
    if not isinstance(values, Mapping):
        raise TypeError("guard: pass usage= to say which values to record, or return a mapping of values")
    return values


class Limitry:
    """Sync client.

    ``fail_mode`` (``open`` by default) is what ``limits.check`` answers when the service cannot
    be reached and neither the call nor the customer's last successful check says otherwise.
    ``timeout`` is per attempt (seconds); checks use ``check_timeout`` (3 s) instead, so a hung
    service becomes a fail-mode answer quickly.
    """

    def __init__(self, api_key: Optional[str] = None, *, base_url: Optional[str] = None,
                 timeout: Any = DEFAULT_TIMEOUT, max_retries: int = DEFAULT_MAX_RETRIES, fail_mode: str = "open",
                 backoff_base: float = 0.25, backoff_cap: float = 8.0, check_timeout: float = DEFAULT_CHECK_TIMEOUT,
                 http_client: Optional[httpx.Client] = None) -> None:
        self._settings = _Settings(api_key, base_url, timeout, max_retries, fail_mode, backoff_base, backoff_cap)
        s = self._settings
        self.fail_mode = s.fail_mode
        self.check_timeout = check_timeout
        self._fail_modes = FailModeMemory()
        self._transport = SyncTransport(api_key=s.api_key, base_url=s.base_url, timeout=timeout,
                                        max_retries=max_retries, backoff_base=backoff_base,
                                        backoff_cap=backoff_cap, http_client=http_client)
        self.project = ProjectResource(self)
        self.customers = CustomersResource(self)
        self.events = EventsResource(self)
        self.meters = MetersResource(self)
        self.limits = LimitsResource(self)
        self.balances = BalancesResource(self)
        self.usage = UsageResource(self)
        self.webhooks = WebhooksResource(self)
        self.client_tokens = ClientTokensResource(self)

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    def recorder(self, **options: Any) -> "BufferedRecorder":
        """A background recorder sending through ``/v1/events/batch``; see ``BufferedRecorder``."""
        from ._recorder import BufferedRecorder

        return BufferedRecorder(self, **options)

    def guard(self, customer_id: str, fn: Callable[[], R], *, event_type: str,
              usage: Optional[Callable[[R], Mapping[str, float]]] = None, requested: Optional[float] = None,
              dimensions: Optional[Mapping[str, str]] = None, fail_mode: Optional[str] = None,
              properties: Any = None, recorder: Any = None) -> R:
        """Check → call → record in one call.

        Checks the customer's limits (with ``requested`` when given); if denied raises
        ``LimitExceededError`` and ``fn`` never runs. Otherwise runs ``fn`` and records one
        ``event_type`` event whose values are ``usage(result)`` (or ``result`` itself when it is
        a mapping), through ``recorder`` when given. Returns what ``fn`` returned.
        """
        check = self.limits.check(customer_id, dimensions=dimensions, requested=requested, fail_mode=fail_mode)
        if not check.allowed:
            raise LimitExceededError(check)
        result = fn()
        values = _usage_of(result, usage)
        if recorder is not None:
            recorder.record(customer_id=customer_id, event_type=event_type, values=values, dimensions=dimensions,
                            properties=properties)
        else:
            self.events.record(customer_id=customer_id, event_type=event_type, values=values,
                               dimensions=dimensions, properties=properties)
        return result

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> "Limitry":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncLimitry:
    """Asyncio client; the same resources and methods as ``Limitry``, awaited."""

    def __init__(self, api_key: Optional[str] = None, *, base_url: Optional[str] = None,
                 timeout: Any = DEFAULT_TIMEOUT, max_retries: int = DEFAULT_MAX_RETRIES, fail_mode: str = "open",
                 backoff_base: float = 0.25, backoff_cap: float = 8.0, check_timeout: float = DEFAULT_CHECK_TIMEOUT,
                 http_client: Optional[httpx.AsyncClient] = None) -> None:
        self._settings = _Settings(api_key, base_url, timeout, max_retries, fail_mode, backoff_base, backoff_cap)
        s = self._settings
        self.fail_mode = s.fail_mode
        self.check_timeout = check_timeout
        self._fail_modes = FailModeMemory()
        self._transport = AsyncTransport(api_key=s.api_key, base_url=s.base_url, timeout=timeout,
                                         max_retries=max_retries, backoff_base=backoff_base,
                                         backoff_cap=backoff_cap, http_client=http_client)
        self.project = AsyncProjectResource(self)
        self.customers = AsyncCustomersResource(self)
        self.events = AsyncEventsResource(self)
        self.meters = AsyncMetersResource(self)
        self.limits = AsyncLimitsResource(self)
        self.balances = AsyncBalancesResource(self)
        self.usage = AsyncUsageResource(self)
        self.webhooks = AsyncWebhooksResource(self)
        self.client_tokens = AsyncClientTokensResource(self)

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    def recorder(self, **options: Any) -> "BufferedRecorder":
        """A background recorder (a thread with its own sync connection; ``record`` never
        blocks the event loop unless ``overflow='block'``)."""
        from ._recorder import BufferedRecorder

        s = self._settings
        sync = Limitry(s.api_key, base_url=s.base_url, timeout=s.timeout, max_retries=0,
                       backoff_base=s.backoff_base, backoff_cap=s.backoff_cap)
        return BufferedRecorder(sync, owns_client=True, **options)

    async def guard(self, customer_id: str, fn: Callable[[], Any], *, event_type: str,
                    usage: Optional[Callable[[Any], Mapping[str, float]]] = None,
                    requested: Optional[float] = None, dimensions: Optional[Mapping[str, str]] = None,
                    fail_mode: Optional[str] = None, properties: Any = None, recorder: Any = None) -> Any:
        """As ``Limitry.guard``; ``fn`` may be a coroutine function."""
        check = await self.limits.check(customer_id, dimensions=dimensions, requested=requested,
                                        fail_mode=fail_mode)
        if not check.allowed:
            raise LimitExceededError(check)
        result = fn()
        if hasattr(result, "__await__"):
            result = await result
        values = _usage_of(result, usage)
        if recorder is not None:
            recorder.record(customer_id=customer_id, event_type=event_type, values=values, dimensions=dimensions,
                            properties=properties)
        else:
            await self.events.record(customer_id=customer_id, event_type=event_type, values=values,
                                     dimensions=dimensions, properties=properties)
        return result

    async def close(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> "AsyncLimitry":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


from ._recorder import BufferedRecorder  # noqa: E402  (the recorder imports the client)
