"""Exceptions raised by the client, one class per kind of failure a caller handles differently.

The service answers errors as ``{"error": {"code", "message", "status", "field"?}}``; the class
follows the status and the code, and every instance keeps ``code``, ``status_code``, ``field``
and the parsed ``body``.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
    "LimitryError",
    "APIError",
    "APIStatusError",
    "BadRequestError",
    "ValidationError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "InternalServerError",
    "APIConnectionError",
    "APITimeoutError",
    "LimitExceededError",
]


class LimitryError(Exception):
    """Base class of every error this package raises."""


class APIError(LimitryError):
    """The service could not be used: an error answer, or no answer at all."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(APIError):
    """The service could not be reached (refused, reset, DNS, TLS)."""

    def __init__(self, message: str = "Could not connect to the Limitry service") -> None:
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """The service did not answer within the configured timeout."""

    def __init__(self, message: str = "The Limitry service did not answer in time") -> None:
        super().__init__(message)


class APIStatusError(APIError):
    """The service answered with a 4xx or 5xx status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: Optional[str] = None,
        field: Optional[str] = None,
        body: Any = None,
        headers: Optional[dict] = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.field = field
        self.body = body
        self.headers = headers or {}

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.status_code} {self.code or 'error'}: {self.message}{where}"


class BadRequestError(APIStatusError):
    """400: the request could not be understood (e.g. malformed JSON)."""


class ValidationError(BadRequestError):
    """400 ``missing_required_field`` / ``invalid_field_value``; ``field`` is the JSON path."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, unknown or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: ``customer_not_found``, ``meter_not_found``, ``route_not_found``, …"""


class ConflictError(APIStatusError):
    """409: the request contradicts the current state (duplicate, already settled, in use)."""


class RateLimitError(APIStatusError):
    """429: the service's own API rate limit; ``retry_after`` is in seconds (None if not sent)."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the service failed; retried automatically, then raised."""


class LimitExceededError(LimitryError):
    """A guarded call was refused by a limit check; ``check`` is the answer that refused it."""

    def __init__(self, check: Any, message: Optional[str] = None) -> None:
        reason = getattr(check, "reason", None) or "limit_exceeded"
        super().__init__(message or f"Refused by Limitry: {reason}")
        self.check = check
        self.reason = reason


def status_error(status: int, body: Any, headers: dict, retry_after: Optional[float]) -> APIStatusError:
    """The exception for an error answer."""
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        code = detail.get("code")
        message = detail.get("message") or f"HTTP {status}"
        field = detail.get("field")
    else:
        code, message, field = None, (detail if isinstance(detail, str) else f"HTTP {status}"), None
    kwargs: dict = dict(status_code=status, code=code, field=field, body=body, headers=headers)
    if status == 400:
        if code in ("missing_required_field", "invalid_field_value") or field:
            return ValidationError(message, **kwargs)
        return BadRequestError(message, **kwargs)
    if status == 401:
        return AuthenticationError(message, **kwargs)
    if status == 403:
        return PermissionDeniedError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status == 409:
        return ConflictError(message, **kwargs)
    if status == 422:
        return ValidationError(message, **kwargs)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        return InternalServerError(message, **kwargs)
    return APIStatusError(message, **kwargs)
