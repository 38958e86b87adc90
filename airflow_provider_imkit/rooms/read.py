"""One read of a room, for everything that waits on it: approvals, message triggers, sensors.

:func:`read_room` reads a room's messages since a cursor (``GET /rooms/{room}/messages/v3``,
newest first, page by page) and hands back a :class:`RoomRead`: the messages oldest first,
from where on they are complete, when the read began on IMKIT's clock, and the error when it
failed. It blocks (it is the client's one request path): the shared readers run it in their
own thread pool, the worker's non-deferrable wait in its own thread. No Airflow in here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.client.read_back import created_ms, room_messages
from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import ImkitReadBackError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_imkit.client import ImkitClient

#: Pages of 100 messages read per read before the room is called too busy to read.
POLL_PAGES = 20
#: Host and IMKIT clocks that differ by no more than this (s) are taken to agree: a ``Date``
#: header says the time to the second only.
CLOCK_AGREEMENT_S = 1.5
#: Room reads are safe to repeat: one quick retry after a network failure or a 5xx. A 429
#: that says how long to wait is not waited out in the read: the readers' budget slows down.
ROOM_READ_POLICY = RetryPolicy(max_attempts=2, backoff=0.2, on_ambiguous="resend", max_retry_after=0.0)
#: Longest wait between two reads after read errors (seconds).
MAX_ERROR_BACKOFF = 300.0


def error_backoff(poll_interval: float, failures: int) -> float:
    """Seconds until the next read after ``failures`` failed reads in a row: the interval,
    doubled for each further failure, at most :data:`MAX_ERROR_BACKOFF` (or the interval)."""
    backoff = poll_interval * 2 ** min(max(failures, 1) - 1, 30)
    return min(backoff, max(MAX_ERROR_BACKOFF, poll_interval))


def imkit_now(client: Any, local: float) -> float:
    """
    IMKIT's time now (s since the epoch): approval deadlines are on its clock, as the replies'
    times are. ``local`` (this host's time) while it agrees with the client's last answer
    (its ``Date`` header, to the second) within :data:`CLOCK_AGREEMENT_S`; else the ``Date``.
    """
    server_time = getattr(client, "server_time", None)
    told = server_time() if callable(server_time) else None
    if told is None or abs(float(told) - local) <= CLOCK_AGREEMENT_S:
        return local
    return float(told) + 0.5  # a Date header is rounded down to the second


@dataclass
class RoomRead:
    """
    What one read of a room found.

    :ivar room: the room read.
    :ivar items: the messages read, oldest first (messages of the same millisecond keep the
        room's order); those created since ``complete_from_ms`` are all there.
    :ivar complete_from_ms: every message created at or after this (ms, IMKIT's clock) is in
        ``items``; None when the read failed before any page.
    :ivar started: when the read began, on IMKIT's clock (s since the epoch): its answer's time
        less how long it took, so a reply made while it ran never counts as read.
    :ivar ended: when it ended, on IMKIT's clock (s).
    :ivar error: why the read failed or stopped early (a too-busy room: 2,000 messages since
        the cursor), else None.
    :ivar requests: the requests (pages) it took.
    """

    room: str
    items: list[dict[str, Any]] = field(default_factory=list)
    complete_from_ms: int | None = None
    started: float = 0.0
    ended: float = 0.0
    error: Exception | None = None
    requests: int = 1

    def covers(self, since_ms: int) -> bool:
        """Whether every message created since ``since_ms`` was read."""
        return self.complete_from_ms is not None and since_ms >= self.complete_from_ms


def read_room(
    client: ImkitClient | None,
    room: str,
    since_ms: int,
    *,
    clock: Callable[[], float] = time.time,
    pages: int = POLL_PAGES,
    failure: Exception | None = None,
) -> RoomRead:
    """
    Read ``room``'s messages created since ``since_ms`` (ms, IMKIT's clock); never raises.

    A room with more than ``pages`` pages of 100 since then is read as far as the pages go:
    the result is complete from the oldest message read on, with an
    :class:`~airflow_provider_imkit.exceptions.ImkitReadBackError` (not transient: reading
    again meets the same messages) for whoever waits from earlier. Any other failure leaves
    nothing read, with its error.

    :param client: the client to read with; None with ``failure``: it could not be built (the
        connection's lookup failed) and that is the read's error.
    :param clock: this host's time in seconds since the epoch (tests inject one).
    """
    before = clock()
    items: list[dict[str, Any]] = []
    error: Exception | None = failure
    complete: int | None = None
    counted = None if client is None else _Counted(client)
    if counted is not None:
        try:
            for item in room_messages(
                counted,
                room,
                since_ms=since_ms,
                pages=pages,
                retry=ROOM_READ_POLICY,
                what="since the last read; too busy to find the first reply (use a quieter room)",
            ):
                items.append(item)
            complete = since_ms
        except ImkitReadBackError as exc:
            exc.transient = False  # reading again would meet the same messages
            error = exc
            oldest = [created_ms(item) for item in items]
            complete = min((t for t in oldest if t is not None), default=None)
            complete = None if complete is None else complete + 1  # its millisecond may go on
        except Exception as exc:  # an IMKIT error, or the connection's lookup failing
            error = exc
    ended = imkit_now(client, clock())
    items.reverse()  # the room lists newest first
    items.sort(key=lambda item: created_ms(item) or 0)  # stable: ties keep the room's order
    started = ended if complete is None else ended - max(0.0, clock() - before)
    return RoomRead(room, items, complete, started, ended, error, counted.requests if counted else 0)


class _Counted:
    """A client that counts the requests made through it (the read budget charges each)."""

    def __init__(self, client: Any) -> None:
        self.client, self.requests = client, 0

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return self.client.request(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
