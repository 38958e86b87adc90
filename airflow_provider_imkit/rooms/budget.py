"""The read budget: how many room reads per minute one connection's readers may make in one
process, spread evenly over the rooms being read, and slowed down by IMKIT's 429s. Pure: the
clock is given; the readers do the waiting. No Airflow in here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from airflow_provider_imkit.exceptions import ImkitConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

#: ``[imkit] approval_reads_per_minute``'s default: under a third of IMKIT's 1,000 requests per
#: minute per API key, which the deployment's sends and alerts share.
DEFAULT_READS_PER_MINUTE = 300
#: The lowest rate 429s bring the budget down to (reads per minute), unless the budget is lower.
MIN_READS_PER_MINUTE = 6.0
#: After a 429 without a wait in it, reads pause this long (s).
DEFAULT_PAUSE_S = 10.0
#: The longest pause a 429 may ask for (s): waits must still reach their deadlines.
MAX_PAUSE_S = 300.0


def reads_per_minute(value: object, *, option: str = "[imkit] approval_reads_per_minute") -> int:
    """The budget from a configured value (an int, or its text).

    :raises ImkitConfigurationError: not a whole number of at least 1 (names ``option``).
    """
    text = str(value).strip()
    try:
        number = int(text)
    except ValueError:
        number = 0
    if isinstance(value, bool) or number < 1:
        raise ImkitConfigurationError(
            f"{option} must be a whole number of reads per minute, at least 1; got {value!r}"
        )
    return number


class ReadBudget:
    """
    One connection's room reads per minute, in one process: each read takes the next free
    slot, ``60 / rate`` seconds after the one before, in the order asked for, so N rooms are
    read in turn and, when they want more than the budget, each room's interval stretches
    evenly to ``N / rate`` minutes.

    A 429 from IMKIT halves the rate (not below :data:`MIN_READS_PER_MINUTE`) and pauses every
    read for the wait it asked for (at most :data:`MAX_PAUSE_S`); slots handed out before it
    are void (:attr:`generation`), so every reader asks again at the lower rate. Each read
    that succeeds gives back a tenth of the budget, up to the budget. A read of more than one
    page takes a slot per page (:meth:`charge`): the budget counts requests.

    :param per_minute: the budget: reads per minute.
    :param clock: a monotonic clock in seconds (default ``time.monotonic``).
    """

    def __init__(self, per_minute: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = float(per_minute)
        #: The rate reads are given slots at now (reads per minute): the budget, or less after 429s.
        self.rate = self.per_minute
        self._clock = clock
        self._next_slot = 0.0
        #: No read starts before this (monotonic s): a 429 asked to wait.
        self.paused_until = 0.0
        #: Bumped by each 429: a slot handed out under an earlier generation is void.
        self.generation = 0

    def set_budget(self, per_minute: float) -> None:
        """Take a new budget (the option was changed); the rate follows at once when lowered."""
        self.per_minute = float(per_minute)
        self.rate = min(self.rate, self.per_minute)

    def reserve(self) -> float:
        """Take the next free slot: the monotonic time at which the read may start."""
        now = self._clock()
        at = max(now, self._next_slot, self.paused_until)
        self._next_slot = at + 60.0 / self.rate
        return at

    def charge(self, requests: int) -> None:
        """A read made ``requests`` requests (pages) on its one slot: the extra ones push the
        next free slot on, so reads of busy rooms count as what they cost."""
        if requests > 1:
            self._next_slot = max(self._next_slot, self._clock()) + (requests - 1) * 60.0 / self.rate

    def succeeded(self) -> None:
        """A read was answered: back towards the budget by a tenth of it."""
        self.rate = min(self.per_minute, self.rate + self.per_minute / 10)

    def limited(self, retry_after: float | None) -> None:
        """IMKIT answered 429: halve the rate and pause reads for ``retry_after`` seconds."""
        self.generation += 1
        self.rate = max(min(MIN_READS_PER_MINUTE, self.per_minute), self.rate / 2)
        pause = DEFAULT_PAUSE_S if retry_after is None or retry_after <= 0 else float(retry_after)
        self.paused_until = max(self.paused_until, self._clock() + min(pause, MAX_PAUSE_S))
        # Slots handed out so far are void: they were spaced for the old rate.
        self._next_slot = self.paused_until
