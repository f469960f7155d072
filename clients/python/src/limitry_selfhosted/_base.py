"""What the sync and async clients share: configuration, request shaping, the retry policy and
the fail-mode memory. Nothing here does IO."""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Optional, Union

import httpx
from pydantic import BaseModel

from ._errors import APIStatusError, status_error

try:  # the distribution's version, for the User-Agent
    from importlib.metadata import version as _version

    __version__ = _version("limitry-selfhosted")
except Exception:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

DEFAULT_BASE_URL = "http://127.0.0.1:3000"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2
#: Per-attempt timeout of ``limits.check``: short, so a hung service turns into a fail-mode
#: answer quickly instead of stalling the caller's request.
DEFAULT_CHECK_TIMEOUT = 3.0
#: Longest ``Retry-After`` the client waits for by itself; longer ones raise ``RateLimitError``.
MAX_RETRY_AFTER = 60.0

FailMode = str  # "open" | "closed"


def env_api_key(api_key: Optional[str]) -> str:
    key = api_key if api_key is not None else os.environ.get("LIMITRY_API_KEY")
    if not key:
        raise ValueError("No API key: pass api_key= or set LIMITRY_API_KEY")
    return key


def env_base_url(base_url: Optional[str]) -> str:
    url = base_url or os.environ.get("LIMITRY_BASE_URL") or DEFAULT_BASE_URL
    return url.rstrip("/")


def check_fail_mode(mode: Optional[str]) -> Optional[str]:
    if mode not in (None, "open", "closed"):
        raise ValueError(f"fail_mode must be 'open' or 'closed', not {mode!r}")
    return mode


def new_idempotency_key() -> str:
    return f"lmtcli_{uuid.uuid4().hex}"


# How a request may be retried:
# - "always": repeating it is harmless (reads, checks, writes deduplicated by an idempotency key);
# - "unsent": a write the service does not deduplicate, retried only when it surely never
#   arrived (connection refused) or was refused unprocessed (429).
RetryPolicy = str


@dataclass
class Request:
    method: str
    path: str
    params: Optional[Dict[str, Any]] = None
    body: Any = None
    retry: RetryPolicy = "always"
    idempotency_key: Optional[str] = None
    accept: str = "application/json"
    timeout: Optional[float] = None
    headers: Dict[str, str] = field(default_factory=dict)

    def encoded(self) -> Optional[bytes]:
        # Encoded once: the service fingerprints the body with the idempotency key, so every
        # retry must send the very same bytes.
        if self.body is None:
            return None
        return json.dumps(self.body, separators=(",", ":"), default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_wire(value: Any) -> Any:
    """A caller's value as JSON: models by alias, datetimes as RFC 3339."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def body(**fields: Any) -> Dict[str, Any]:
    """A JSON body from keyword arguments already named as on the wire; None means absent."""
    return {k: to_wire(v) for k, v in fields.items() if v is not None}


def query(**fields: Any) -> Dict[str, Any]:
    return {k: (to_wire(v) if not isinstance(v, bool) else str(v).lower()) for k, v in fields.items() if v is not None}


def parse_retry_after(headers: httpx.Headers) -> Optional[float]:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def error_from_response(response: httpx.Response) -> APIStatusError:
    try:
        parsed: Any = response.json()
    except ValueError:
        parsed = response.text
    return status_error(response.status_code, parsed, dict(response.headers), parse_retry_after(response.headers))


def should_retry_status(request: Request, status: int) -> bool:
    if status == 429:
        return True
    return status >= 500 and request.retry == "always"


def retry_delay(attempt: int, retry_after: Optional[float], base: float, cap: float) -> float:
    """Exponential backoff with jitter; a server's ``Retry-After`` wins when it says more."""
    backoff = min(cap, base * (2**attempt)) * (0.75 + random.random() / 4)
    if retry_after is not None:
        return max(retry_after, backoff if retry_after == 0 else 0.0)
    return backoff


class FailModeMemory:
    """The fail mode each customer's limits asked for at their last successful check.

    A customer governed by any ``closed`` limit fails closed; one whose limits are all ``open``
    fails open; a customer never checked (or governed by no limit) falls back to the client
    default.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._modes: Dict[str, str] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def remember(self, customer_id: str, limits: Any) -> None:
        modes = [getattr(limit, "fail_mode", None) for limit in limits or []]
        modes = [getattr(m, "value", m) for m in modes if m is not None]
        with self._lock:
            if not modes:
                self._modes.pop(customer_id, None)
                return
            if len(self._modes) >= self._capacity and customer_id not in self._modes:
                self._modes.pop(next(iter(self._modes)))
            self._modes[customer_id] = "closed" if "closed" in modes else "open"

    def recall(self, customer_id: str) -> Optional[str]:
        with self._lock:
            return self._modes.get(customer_id)


TimeoutLike = Union[float, httpx.Timeout, None]
