"""The hook's retry policy: which failures are retried, and how long to wait.

IMKIT has no idempotency key for ``POST /messages``, so a retried send whose first attempt
reached the server posts the message twice. The policy therefore splits failures in two:

* certainly not delivered: the connection could not be made, 429 (rate limited) and
  503 (unavailable): retried by default;
* maybe delivered: read timeout, connection reset after the request was sent, 500, 502,
  504: retried only with ``retry_on_ambiguous=True`` (at-least-once delivery).

Everything else (4xx other than 429, malformed success bodies) is never retried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.exceptions import (
    ImkitApiError,
    ImkitConfigurationError,
    ImkitConnectionError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

#: HTTP statuses that prove the request was not processed.
NOT_DELIVERED_STATUSES = frozenset({429, 503})
#: HTTP statuses after which the request may or may not have been processed.
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """
    When and how the hook retries a request.

    :param max_attempts: attempts in all, the first included (1 disables retries).
    :param backoff: wait before the first retry, in seconds; doubled for each further retry.
    :param max_backoff: cap of one backoff wait, in seconds.
    :param max_retry_after: the longest wait a 429 may ask for (``Retry-After`` header or
        ``retryAfter`` body field, whichever is larger). A longer request raises at once.
    :param retry_on_ambiguous: also retry failures after which the message may have been
        stored (read timeout, reset after sending, 500/502/504). This can post twice.
    :param jitter: fraction of each backoff wait that is randomised (0 to 1).
    """

    max_attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 10.0
    max_retry_after: float = 60.0
    retry_on_ambiguous: bool = False
    jitter: float = 0.5
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool]] = [
            ("max_attempts", isinstance(self.max_attempts, int) and 1 <= self.max_attempts <= 100),
            ("backoff", _is_number(self.backoff) and self.backoff >= 0),
            ("max_backoff", _is_number(self.max_backoff) and self.max_backoff >= 0),
            ("max_retry_after", _is_number(self.max_retry_after) and self.max_retry_after >= 0),
            ("retry_on_ambiguous", isinstance(self.retry_on_ambiguous, bool)),
            ("jitter", _is_number(self.jitter) and 0 <= self.jitter <= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ImkitConfigurationError(
                    f"Invalid IMKIT retry setting {name!r}: {getattr(self, name)!r}"
                )

    def with_overrides(self, **overrides: Any) -> RetryPolicy:
        """Return a copy with the given settings replaced; None values are ignored."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def is_retryable(self, error: BaseException) -> bool:
        """Decide whether a failed attempt may be retried (attempt limits aside)."""
        if isinstance(error, ImkitConnectionError):
            return not error.permanent and (self.retry_on_ambiguous or not error.maybe_delivered)
        if isinstance(error, ImkitApiError):
            if error.status_code == 429:
                return (error.retry_after or 0.0) <= self.max_retry_after
            if error.status_code in NOT_DELIVERED_STATUSES:
                return True
            return self.retry_on_ambiguous and error.status_code in AMBIGUOUS_STATUSES
        return False

    def wait_before(self, retry_number: int, error: BaseException | None) -> float:
        """
        Seconds to wait before retry number ``retry_number`` (1 for the first retry).

        A 429 waits exactly what the server asked for, when it asked; other failures wait
        ``backoff * 2 ** (retry_number - 1)``, capped at ``max_backoff``, of which the
        ``jitter`` fraction is random.
        """
        if isinstance(error, ImkitApiError) and error.retry_after is not None:
            return error.retry_after
        base = min(self.max_backoff, self.backoff * (2 ** max(0, retry_number - 1)))
        return base * (1 - self.jitter) + base * self.jitter * self.random()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
