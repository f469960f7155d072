"""Hand-written additions to the generated models: what a check answers when the service
cannot be asked, and a limit status whose ``held`` is a number even when nothing is held."""

from __future__ import annotations

from typing import List, Optional

from . import models as m


class LimitStatus(m.LimitStatus):
    """One limit as a check answered it."""

    held: float = 0
    """Of ``used``, what reservations in flight hold on this limit; 0 when nothing is held (the
    service then leaves the field out)."""


class CheckResult(m.CheckResponse):
    """A limit check's answer. ``fallback`` is True when it was decided by the fail mode because
    the service could not be reached or failed; ``fail_mode`` then says which mode decided and
    ``error`` what went wrong."""

    limits: List[LimitStatus]
    fallback: bool = False
    fail_mode: Optional[str] = None
    error: Optional[str] = None

    @classmethod
    def fallback_for(cls, customer_id: str, mode: str, exc: Exception) -> "CheckResult":
        allowed = mode == "open"
        return cls.model_construct(
            allowed=allowed,
            reason=None if allowed else "service_unavailable",
            customer_id=customer_id,
            limits=[],
            fallback=True,
            fail_mode=mode,
            error=str(exc),
        )
