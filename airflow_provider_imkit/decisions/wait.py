"""The wait for an answer, read by read: the same for the trigger (in the triggerer, fed by a
shared room reader) and the non-deferrable wait (in the worker); finding a try's earlier
undecided question."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_imkit.client.read_back import find_message, room_messages, sender_id
from airflow_provider_imkit.decisions.question import Question, chosen_option, created_ms
from airflow_provider_imkit.decisions.texts import is_outcome_text
from airflow_provider_imkit.rooms.read import (
    CLOCK_AGREEMENT_S,
    MAX_ERROR_BACKOFF,
    POLL_PAGES,
    RoomRead,
    error_backoff,
    imkit_now,
    read_room,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_provider_imkit.client import ImkitClient

__all__ = [
    "CLOCK_AGREEMENT_S",
    "CURSOR_OVERLAP_MS",
    "MAX_ERROR_BACKOFF",
    "POLL_PAGES",
    "READ_GRACE_AFTER_TIMEOUT",
    "ApprovalWait",
    "Outcome",
    "error_backoff",
    "imkit_now",
    "undecided_question",
]

#: After the timeout, how long reads may keep failing before the wait ends without them (s).
READ_GRACE_AFTER_TIMEOUT = 300.0
#: Each read starts this much before the newest message seen (ms): a reply stored late
#: with an earlier time is still read (re-reading is harmless: nothing re-read counted).
CURSOR_OVERLAP_MS = 5_000


def undecided_question(
    client: ImkitClient,
    asked: Question,
    text: str,
    *,
    since_ms: int,
    settled_after: float = 0.0,
    seen: set[str] | None = None,
) -> dict[str, Any] | None:
    """
    An earlier try's question, still open, for a later try to wait on instead of asking again:
    the newest question ``text`` that ``asked.sender`` posted in ``asked.room`` since
    ``since_ms``, when nothing has decided it yet: no outcome note for it, no counting reply
    (``asked``'s approvers and options), and its wait (``asked``'s deadline less its asking
    time, on IMKIT's clock) not over. A decided question is never reused; else None.

    :param asked: the question as this try would ask it (its ``message_id`` and times are
        replaced by the found question's).
    :param settled_after: the settle rule for the earlier try's post (seconds since the
        epoch): while nothing is found, the room is read again until then.
    :param seen: filled with the id of the question found, decided or not (so the caller can
        tell an earlier try's question from its own new one).
    :raises ImkitReadBackError: the room holds too many messages to tell.
    """
    seen = set() if seen is None else seen
    found = find_message(
        client,
        room=asked.room,
        sender=asked.sender,
        message=text,
        message_type="text",
        mentions=asked.approvers,
        since_ms=since_ms,
        settled_after=settled_after,
    )
    if found is None:
        return None
    seen.add(str(found.get("_id")))
    asked_at = created_ms(found) or since_ms
    wait_ms = None if asked.deadline_ms is None else asked.deadline_ms - asked.asked_at_ms
    question = replace(
        asked,
        message_id=str(found.get("_id")),
        asked_at_ms=asked_at,
        deadline_ms=None if wait_ms is None else asked_at + wait_ms,
    )
    if question.deadline_ms is not None and imkit_now(client, time.time()) * 1000 > question.deadline_ms:
        return None  # its wait is over: timed out, whether or not its try said so
    for item in room_messages(client, asked.room, since_ms=asked_at):
        if sender_id(item) == asked.sender and is_outcome_text(item.get("message"), question.message_id):
            return None
        if chosen_option(item, question) is not None:
            return None
    return found


# -- the wait -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """
    How a wait ended: ``chosen`` (by an approver's reply), ``timeout`` or ``error`` (the room
    cannot be read: a permanent error). Travels as the trigger event's payload.
    """

    status: Literal["chosen", "timeout", "error"]
    chosen: str | None = None
    by: str | None = None
    message_id: str | None = None
    at_ms: int | None = None
    error: str | None = None

    def to_event(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_event(cls, event: Any) -> Outcome:
        if not isinstance(event, dict) or event.get("status") not in ("chosen", "timeout", "error"):
            return cls("error", error=f"unexpected trigger event {event!r}")
        return cls(
            status=event["status"],
            chosen=event.get("chosen"),
            by=event.get("by"),
            message_id=event.get("message_id"),
            at_ms=event.get("at_ms"),
            error=event.get("error"),
        )


@dataclass
class ApprovalWait:
    """
    One approval's wait: read the room since the last read, decide, or say how long to sleep.

    In the worker, drive it with :meth:`poll` between sleeps (:meth:`run`); in the triggerer, a
    shared room reader hands it reads (:meth:`take`, a
    :class:`~airflow_provider_imkit.rooms.readers.Listener`). Both decide with :meth:`step`.
    Reads resume from the newest message already seen; transient read errors back off
    (doubling from ``poll_interval`` up to 5 minutes) and never end the wait before the deadline.

    :param question: what is asked, and where.
    :param poll_interval: seconds between reads.
    :param clock: the time in seconds since the epoch (injected by tests).
    :param log: where read failures are logged (a warning each, with the next wait).
    """

    question: Question
    poll_interval: float
    clock: Callable[[], float] = time.time
    log: Any = None
    failures: int = field(default=0, init=False)
    last_error: str | None = field(default=None, init=False)
    cursor_ms: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.cursor_ms = self.question.asked_at_ms

    @property
    def since_ms(self) -> int:
        """Where the next read starts (ms, IMKIT's clock): 5 s before the newest message seen."""
        return self.cursor_ms

    def server_now(self, client: ImkitClient) -> float:
        """IMKIT's time now (:func:`imkit_now`, with this wait's clock as the host's)."""
        return imkit_now(client, self.clock())

    def read(self, client: ImkitClient) -> RoomRead:
        """Read the room since the cursor (blocking; never raises)."""
        return read_room(client, self.question.room, self.cursor_ms, clock=self.clock)

    def poll(self, client: ImkitClient) -> Outcome | float:
        """One read: an :class:`Outcome` when the wait is over, else seconds to sleep."""
        return self.step(self.read(client))

    def take(self, read: RoomRead) -> tuple[Sequence[Outcome], float | None]:
        """A shared room reader's read (see :mod:`airflow_provider_imkit.rooms.readers`): the
        outcome when the wait is over (then no more reads), else the seconds until the next."""
        step = self.step(read)
        return ([step], None) if isinstance(step, Outcome) else ((), step)

    def step(self, read: RoomRead) -> Outcome | float:
        """Decide from one read of the room (which may have begun before this wait's cursor):
        the first counting reply's :class:`Outcome`, a timeout, an error, or seconds to sleep."""
        if read.error is not None and not read.covers(self.cursor_ms):
            return self._after_error(read.ended, read.error)
        self.failures = 0
        for item in read.items:
            option = chosen_option(item, self.question)
            if option is not None:
                return Outcome(
                    "chosen", chosen=option, by=str(sender_id(item)), message_id=item.get("_id"),
                    at_ms=created_ms(item),
                )  # fmt: skip
        newest = max([self.cursor_ms, *(created_ms(i) or 0 for i in read.items)])
        self.cursor_ms = max(self.question.asked_at_ms, newest - CURSOR_OVERLAP_MS)
        deadline = self.question.deadline_ms
        if deadline is None:
            return self.poll_interval
        # The read began after the deadline (and the grace for a ``Date`` header that is only
        # to the second): every reply made in time has been seen. ``read.started`` is on
        # IMKIT's clock, less how long the read took: a host clock ahead or behind of IMKIT's
        # neither ends the wait early nor keeps it late, and a slow read does not count
        # replies made while it ran as read.
        end = (deadline + self.question.grace_ms) / 1000
        if read.started >= end:
            return Outcome("timeout")
        return max(0.0, min(self.poll_interval, end - read.started))

    def _after_error(self, started: float, exc: Exception) -> Outcome | float:
        if not getattr(exc, "transient", True):
            return Outcome("error", error=str(exc))
        self.failures += 1
        self.last_error = str(exc)
        deadline = self.question.deadline_ms
        if deadline is not None and started * 1000 >= deadline + READ_GRACE_AFTER_TIMEOUT * 1000:
            return Outcome("timeout", error=f"the room could not be read at the deadline: {exc}")
        delay = error_backoff(self.poll_interval, self.failures)
        asked = getattr(exc, "retry_after", None)  # a 429 that says how long (the worker's wait)
        if isinstance(asked, int | float) and not isinstance(asked, bool) and asked > delay:
            delay = min(float(asked), max(MAX_ERROR_BACKOFF, self.poll_interval))
        if self.log is not None:
            self.log.warning(
                "Reading room %s failed (%d in a row: %s); again in %.0f s",
                self.question.room,
                self.failures,
                self.last_error,
                delay,
            )
        return delay

    def run(self, client: ImkitClient, sleep: Callable[[float], Any] = time.sleep) -> Outcome:
        """Wait in this thread (the non-deferrable mode) until the wait is over."""
        while True:
            step = self.poll(client)
            if isinstance(step, Outcome):
                return step
            sleep(step)
