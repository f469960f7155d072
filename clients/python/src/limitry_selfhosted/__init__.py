"""Python client for a self-hosted Limitry service.

    from limitry_selfhosted import Limitry

    client = Limitry()  # LIMITRY_API_KEY, LIMITRY_BASE_URL
    check = client.limits.check("acme")
    if check.allowed:
        ...  # the costly work
        client.events.record(customer_id="acme", event_type="llm.completion", values={"tokens": 512})
"""

from . import models
from ._base import __version__
from ._client import AsyncLimitry, Limitry
from ._errors import (APIConnectionError, APIError, APIStatusError, APITimeoutError, AuthenticationError,
                      BadRequestError, ConflictError, InternalServerError, LimitExceededError, LimitryError,
                      NotFoundError, PermissionDeniedError, RateLimitError, ValidationError)
from ._pagination import AsyncPager, Page, SyncPager
from ._recorder import BufferedRecorder, RecorderStats
from ._resources import HeldReservation
from ._resources_async import AsyncHeldReservation
from ._types import CheckResult

__all__ = [
    "Limitry", "AsyncLimitry", "BufferedRecorder", "RecorderStats", "CheckResult", "HeldReservation",
    "AsyncHeldReservation", "Page", "SyncPager",
    "AsyncPager", "models", "__version__",
    "LimitryError", "APIError", "APIStatusError", "APIConnectionError", "APITimeoutError", "AuthenticationError",
    "BadRequestError", "ValidationError", "PermissionDeniedError", "NotFoundError", "ConflictError",
    "RateLimitError", "InternalServerError", "LimitExceededError",
]
