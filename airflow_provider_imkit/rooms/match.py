"""Messages that start pipelines: which messages of a room count (:class:`MessageFilter`), and
the watch that turns reads of the room into one event per matching message, in the order IMKIT
stored them, never twice (:class:`MessageWatch`, a
:class:`~airflow_provider_imkit.rooms.readers.Listener`). Shared by the message trigger (in the
triggerer, fed by a shared room reader) and the sensor's wait in the worker. No Airflow in here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.client import validation
from airflow_provider_imkit.client.read_back import created_ms, is_own_post, sender_id
from airflow_provider_imkit.exceptions import ImkitValidationError
from airflow_provider_imkit.rooms.read import CLOCK_AGREEMENT_S, RoomRead, error_backoff

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: Each read starts this much before the newest message seen (ms): a message IMKIT stored late,
#: with an earlier time, is still read; the ids already fired within it are kept to skip them.
CURSOR_OVERLAP_MS = 5_000
#: A watch with no event keeps its cursor at most this long (s) before it is saved anyway.
CURSOR_SAVE_EVERY_S = 60.0
#: Message types that are never a message someone typed (a recalled message becomes one).
NEVER_MATCHED_TYPES = frozenset({"recall"})


@dataclass(frozen=True)
class MessageFilter:
    """
    Which messages of a room count: by one of ``senders``, of one of ``message_types``, not
    recalled or deleted, not posted by the provider in this process, and (with a ``pattern``)
    text in which ``re.search`` finds the pattern. Build it with :meth:`build`.
    """

    room: str
    senders: tuple[str, ...]
    message_types: tuple[str, ...]
    pattern: str | None = None
    compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        room: Any,
        *,
        pattern: Any = None,
        senders: Any,
        message_types: Any = ("text",),
    ) -> MessageFilter:
        """
        Check the arguments and compile the pattern.

        :param room: the room id.
        :param pattern: a Python regular expression searched in the message text
            (``re.search``); None matches every message of the allowed types.
        :param senders: the user ids whose messages count, at least one: a list (or tuple or
            set) of ids, or text holding one id, ``"a,b"``, or a JSON or Python list. Kept
            sorted (as ``message_types``): their order means nothing.
        :param message_types: the message types that count (default ``("text",)``), same forms.
        :raises ImkitValidationError: naming ``room``, ``pattern``, ``senders`` or
            ``message_types`` and what is wrong.
        """
        checked_room = validation.identifier("room", room)
        ids = validation.user_ids("senders", senders)
        if not ids:
            raise ImkitValidationError(
                "senders", "must name at least one user id: a room command is never open to everyone"
            )
        types = validation.user_ids("message_types", message_types)
        if not types:
            raise ImkitValidationError("message_types", "must name at least one message type, e.g. 'text'")
        for index, name in enumerate(types):
            if name in NEVER_MATCHED_TYPES:
                raise ImkitValidationError(
                    f"message_types[{index}]", f"{name!r} is a recalled message, never a message to act on"
                )
        compiled = None
        if pattern is not None:
            if not isinstance(pattern, str):
                raise ImkitValidationError("pattern", f"must be a regular expression string, got {pattern!r}")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ImkitValidationError("pattern", f"is not a valid regular expression: {exc}") from None
        # Sorted: their order means nothing, and the watcher's identity (Airflow hashes its
        # kwargs; its cursor's key) must not change with it (a set's order differs per process).
        return cls(checked_room, tuple(sorted(ids)), tuple(sorted(types)), pattern, compiled)

    def match(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """
        The event payload for a listed message that counts, else None::

            {"message": {"_id", "room", "message", "messageType", "sender", "createdAtMS"},
             "groups": {<the pattern's named groups>}}
        """
        kind = item.get("messageType")
        if item.get("isDeleted") or kind in NEVER_MATCHED_TYPES or kind not in self.message_types:
            return None
        who, message_id = sender_id(item), item.get("_id")
        if who not in self.senders or not isinstance(message_id, str) or is_own_post(message_id):
            return None
        text = item.get("message")
        groups: dict[str, Any] = {}
        if self.compiled is not None:
            found = self.compiled.search(text) if isinstance(text, str) else None
            if found is None:
                return None
            groups = found.groupdict()
        return {
            "message": {
                "_id": message_id,
                "room": item.get("room", self.room),
                "message": text,
                "messageType": kind,
                "sender": who,
                "createdAtMS": created_ms(item),
            },
            "groups": groups,
        }


@dataclass(frozen=True)
class Cursor:
    """
    Where a watch is: it counts messages created after ``start_ms`` (when it first started,
    IMKIT's clock, ms; a message of that very millisecond may be from just before); it has
    read up to the newest message, created at ``newest_ms``; ``fired`` holds ``(id, created
    ms)`` of the messages it fired for within the overlap before that. Plain JSON through
    :meth:`Cursor.to_json` (what the asset state store keeps).
    """

    start_ms: int
    newest_ms: int
    fired: tuple[tuple[str, int], ...] = ()

    @property
    def since_ms(self) -> int:
        """Where the next read starts: the overlap before the newest message, not before the start."""
        return max(self.start_ms, self.newest_ms - CURSOR_OVERLAP_MS)

    def to_json(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "newest_ms": self.newest_ms,
            "fired": [[message_id, at] for message_id, at in self.fired],
        }

    @classmethod
    def from_json(cls, data: Any) -> Cursor | None:
        """A stored cursor, or None when ``data`` is not one (nothing stored yet, or garbage)."""
        if not isinstance(data, Mapping):
            return None
        start, newest, fired = data.get("start_ms"), data.get("newest_ms"), data.get("fired", [])
        if not all(_is_int(v) for v in (start, newest)) or not isinstance(fired, list):
            return None
        pairs = []
        for pair in fired:
            if not (isinstance(pair, list | tuple) and len(pair) == 2 and _is_int(pair[1])):
                return None
            pairs.append((str(pair[0]), int(pair[1])))
        return cls(int(start), int(newest), tuple(pairs))  # type: ignore[arg-type]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Fired:
    """One event of a watch: the payload, and the cursor that counts it as fired."""

    payload: dict[str, Any]
    cursor: Cursor


@dataclass(frozen=True)
class Moved:
    """No event, but the cursor moved on (save it, so a restart reads less)."""

    cursor: Cursor


@dataclass(frozen=True)
class Failed:
    """The room cannot be read for good (an unknown room, a bad key): ``error`` says why."""

    error: str


@dataclass
class MessageWatch:
    """
    One watch of a room: each read gives the events of the messages that count and are new,
    oldest first. A transient read error backs off (the interval, doubled per failure, up to
    5 minutes); a room too busy to read from the cursor (2,000 messages) skips ahead with a
    warning. A permanent error gives :class:`Failed` when ``once`` (the sensor's wait ends),
    else a warning and the longest backoff (a watcher keeps going: the key may be fixed).

    :param filter: which messages count.
    :param poll_interval: seconds between reads.
    :param cursor: where to go on from (a restart); None: start now (on the first read,
        corrected to IMKIT's clock when the host's disagrees with it).
    :param start_ms: with no ``cursor``, count messages created after this (ms) instead of
        now (the sensor: when its first try started).
    :param once: end after the first event (the sensor).
    :param clock: this host's time (s since the epoch; tests inject one).
    :param log: where warnings go.
    """

    filter: MessageFilter
    poll_interval: float
    cursor: Cursor | None = None
    start_ms: int | None = None
    once: bool = False
    clock: Callable[[], float] = time.time
    log: Any = None
    failures: int = field(default=0, init=False)
    saved_at: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._local_start = self.clock()
        if self.cursor is None:
            at = int(self._local_start * 1000) if self.start_ms is None else self.start_ms
            self.cursor = Cursor(at, at)
            self._correct_clock = self.start_ms is None
        else:
            self._correct_clock = False
        self.saved_at = self._local_start

    @property
    def since_ms(self) -> int:
        """Where the next read starts (ms, IMKIT's clock)."""
        assert self.cursor is not None
        return self.cursor.since_ms

    def take(self, read: RoomRead) -> tuple[Sequence[Fired | Moved | Failed], float | None]:
        """A read of the room: its events, and the seconds until the next read (None: done)."""
        assert self.cursor is not None
        if self._correct_clock and read.error is None and self._on_imkit_clock(read):
            return (), 0.0  # the start moved before what this read covers: read again from it
        if read.error is not None and not read.covers(self.since_ms):
            if read.complete_from_ms is None:
                return self._after_error(read.error)
            self._warn(
                "Room %s holds too many messages since the last read: those before %d ms are skipped (%s)",
                self.filter.room, read.complete_from_ms, read.error,
            )  # fmt: skip
            newest = max(self.cursor.newest_ms, read.complete_from_ms)
            self.cursor = Cursor(self.cursor.start_ms, newest, self.cursor.fired)
        self.failures = 0
        events: list[Fired | Moved | Failed] = []
        since, start, newest = self.since_ms, self.cursor.start_ms, self.cursor.newest_ms
        fired = dict(self.cursor.fired)
        for item in read.items:
            created, message_id = created_ms(item), item.get("_id")
            if created is None or created < since or created <= start:
                continue  # from before the start, read for another listener, or counted already
            newest = max(newest, created)
            payload = None if message_id in fired else self.filter.match(item)
            if payload is None:
                continue
            fired[str(message_id)] = created
            self.cursor = _cursor(start, newest, fired)
            events.append(Fired(payload, self.cursor))
            if self.once:
                return events, None
        if newest != self.cursor.newest_ms:
            self.cursor = _cursor(start, newest, fired)
            if not events and self.clock() - self.saved_at >= CURSOR_SAVE_EVERY_S:
                events.append(Moved(self.cursor))
        if events:
            self.saved_at = self.clock()
        return events, float(self.poll_interval)

    def _on_imkit_clock(self, read: RoomRead) -> bool:
        """Put a start taken from this host's clock on IMKIT's (first successful read); True
        when the start moved before what ``read`` covers (it must be read again from there)."""
        self._correct_clock = False
        assert self.cursor is not None
        offset = read.ended - self.clock()
        if abs(offset) <= CLOCK_AGREEMENT_S:
            return False
        at = self.cursor.start_ms + int(offset * 1000)
        self.cursor = Cursor(at, at)
        return read.complete_from_ms is None or at < read.complete_from_ms

    def _after_error(self, error: Exception) -> tuple[Sequence[Failed], float | None]:
        if not getattr(error, "transient", True):
            if self.once:
                return [Failed(str(error))], None
            self.failures = max(self.failures + 1, 30)  # the longest backoff
        else:
            self.failures += 1
        delay = error_backoff(self.poll_interval, self.failures)
        self._warn(
            "Reading room %s failed (%d in a row: %s); again in %.0f s",
            self.filter.room, self.failures, error, delay,
        )  # fmt: skip
        return (), delay

    def _warn(self, text: str, *args: Any) -> None:
        if self.log is not None:
            self.log.warning(text, *args)


def _cursor(start: int, newest: int, fired: Mapping[str, int]) -> Cursor:
    """The cursor after ``newest``: only the fired ids inside the overlap are kept."""
    floor = max(start, newest - CURSOR_OVERLAP_MS)
    return Cursor(start, newest, tuple((i, at) for i, at in fired.items() if at >= floor))
