"""Triggers on IMKIT rooms: :class:`ImkitApprovalTrigger` waits in the triggerer for an
approver's reply; :class:`ImkitMessageTrigger` fires for messages that start pipelines (an
asset watcher's trigger, and the message sensor's deferral)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.triggers import BaseEventTrigger
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_imkit import (
    DEFAULT_CONN_ID,
    version_compat,  # noqa: F401  (makes the errors AirflowExceptions)
)
from airflow_provider_imkit.decisions import ApprovalWait, Question
from airflow_provider_imkit.exceptions import ImkitValidationError
from airflow_provider_imkit.rooms.budget import DEFAULT_READS_PER_MINUTE, reads_per_minute
from airflow_provider_imkit.rooms.match import Failed, Fired, MessageFilter, MessageWatch
from airflow_provider_imkit.rooms.readers import room_readers
from airflow_provider_imkit.triggers.cursors import cursor_key, load_cursor, save_cursor
from airflow_provider_imkit.version_compat import AIRFLOW_V_3_3_PLUS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from airflow_provider_imkit.client import ImkitClient
    from airflow_provider_imkit.hooks.imkit import ImkitHook


def approval_reads_per_minute() -> int:
    """``[imkit] approval_reads_per_minute``: each connection's room reads per minute in one
    triggerer (default 300), shared by every approval wait on it.

    :raises ImkitConfigurationError: the option is not a whole number of at least 1.
    """
    from airflow.providers.common.compat.sdk import conf

    value = conf.get("imkit", "approval_reads_per_minute", fallback=str(DEFAULT_READS_PER_MINUTE))
    return reads_per_minute(value)


def poll_seconds(value: object) -> float:
    """Check ``poll_interval``: a number of seconds greater than 0.

    :raises ImkitValidationError: naming ``poll_interval``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ImkitValidationError("poll_interval", f"must be a number of seconds > 0, got {value!r}")
    return float(value)


class ImkitApprovalTrigger(BaseTrigger):
    """
    Wait for the first counting reply to an approval question in a room (read with
    ``GET /rooms/{room}/messages/v3``), and fire one event: ``chosen`` (option, replier, reply
    id and time), ``timeout``, or ``error`` (the room cannot be read: unknown room, bad key);
    the event carries the question, so the operator decides from what was asked.

    Every wait on the same connection and room in a triggerer shares one reader: one read per
    ``poll_interval`` (the shortest of the waits') however many wait there, from the oldest
    undecided question on. All rooms of a connection share its read budget,
    ``[imkit] approval_reads_per_minute`` (default 300): when the rooms want more, each room's
    interval stretches evenly, and a 429 slows the reads down until they succeed again. Reads
    run in the provider's own small thread pool; the triggerer's event loop never waits on
    IMKIT. Transient read errors (network, 429, 5xx) are retried with backoff; they end the
    wait only when they last until 5 minutes after the deadline (a ``timeout`` with the reason).
    Its state is only the question: after a triggerer restart it reads the room from the
    question again, so a reply given meanwhile still decides and nothing is posted twice.
    The serialized kwargs hold ids and times only; the key stays in the connection.

    :param question: :meth:`Question.to_json` of the posted question.
    :param poll_interval: seconds between reads of the room.
    :param imkit_conn_id: the Airflow connection of type ``imkit``.
    """

    def __init__(
        self,
        *,
        question: dict[str, Any],
        poll_interval: float = 10.0,
        imkit_conn_id: str = DEFAULT_CONN_ID,
    ) -> None:
        super().__init__()
        self.question = question
        self.poll_interval = poll_interval
        self.imkit_conn_id = imkit_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "question": self.question,
                "poll_interval": self.poll_interval,
                "imkit_conn_id": self.imkit_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        wait = ApprovalWait(Question.from_json(self.question), float(self.poll_interval), log=self.log)
        async with room_readers().watch(
            self.imkit_conn_id,
            wait.question.room,
            wait,
            make_client=self._client,
            reads_per_minute=approval_reads_per_minute(),
        ) as outcomes:
            outcome = await outcomes.next()
        self.log.info("Approval in room %s: %s", wait.question.room, outcome.status)
        yield TriggerEvent({**outcome.to_event(), "question": self.question})

    def _client(self) -> ImkitClient:
        """The connection's client (the shared reader calls this once, in its own thread)."""
        return self._hook().get_conn()

    def _hook(self) -> ImkitHook:
        from airflow_provider_imkit.hooks.imkit import ImkitHook

        return ImkitHook(self.imkit_conn_id)


class ImkitMessageTrigger(BaseEventTrigger):
    """
    Fire one event per message in a room that counts: by one of ``senders``, of one of
    ``message_types``, not recalled or deleted, not posted by the provider in this process,
    and (with a ``pattern``) text that ``re.search`` finds the pattern in; created after the
    watcher first started; in the order IMKIT stored them; never twice for one message. Read with
    ``GET /rooms/{room}/messages/v3`` by the same shared room readers and read budget
    (``[imkit] approval_reads_per_minute``) as approvals: one read per room per interval for
    every watcher, wait and sensor on it in a triggerer.

    On Airflow 3 it is a ``BaseEventTrigger``: use it in an ``AssetWatcher`` and DAGs scheduled
    on the asset start for each message (the asset event's ``extra`` is ``{"from_trigger": true,
    "payload": <the payload>}``: read it from ``context["triggering_asset_events"][asset]``). On
    Airflow 2.11 it is a plain trigger (the message sensor defers to it). The payload, plain
    JSON with no secret::

        {"message": {"_id", "room", "message", "messageType", "sender", "createdAtMS"},
         "groups": {<named groups of the pattern's match>}}

    Restarts: on Airflow 3.3+ the cursor (the newest message read, the ids fired within the
    last 5 s) is kept in the asset's state store before each event is handed on, so a restarted
    triggerer reads on from there: messages posted meanwhile fire, none fires twice (a crash
    between keeping the cursors and Airflow storing the events loses that read's events not
    yet stored rather than firing them twice; a store that cannot be read at the start is
    never overwritten). Airflow 3.0-3.2 keep no watcher state: a trigger started again in the
    same triggerer process goes on from its cursor; a new triggerer process starts from then on
    (messages posted while none watched are skipped, with a warning), never re-firing.
    3.3's shared streams are not used: the room readers already share one read per room among
    all watchers, approval waits and sensors, which a shared stream (watchers of one key only,
    started from the group's start) cannot.

    :param room: the room id.
    :param pattern: a Python regular expression searched in the message text; None: every
        message of the allowed types counts.
    :param senders: the user ids whose messages count, at least one: a list, or text holding
        one id, ``"a,b"`` or a JSON list (the forms ``mentions`` takes).
    :param message_types: message types that count (default ``("text",)``).
    :param poll_interval: seconds between reads of the room (default 10).
    :param imkit_conn_id: the Airflow connection of type ``imkit``.
    :raises ImkitValidationError: a bad argument, named (``pattern``, ``senders``...), when built.
    """

    #: Set by :class:`ImkitMessageSensorTrigger` only: count messages created after this (ms)
    #: and fire once.
    since_ms: int | None = None

    def __init__(
        self,
        room: str,
        *,
        pattern: str | None = None,
        senders: str | Sequence[str],
        message_types: str | Sequence[str] = ("text",),
        poll_interval: float = 10.0,
        imkit_conn_id: str = DEFAULT_CONN_ID,
    ) -> None:
        super().__init__()
        self.filter = MessageFilter.build(room, pattern=pattern, senders=senders, message_types=message_types)
        self.room = self.filter.room
        self.pattern = pattern
        self.senders = list(self.filter.senders)
        self.message_types = list(self.filter.message_types)
        self.poll_interval = poll_seconds(poll_interval)
        self.imkit_conn_id = imkit_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "room": self.room,
            "pattern": self.pattern,
            "senders": self.senders,
            "message_types": self.message_types,
            "poll_interval": self.poll_interval,
            "imkit_conn_id": self.imkit_conn_id,
        }
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        once = self.since_ms is not None
        store = None if once else getattr(self, "asset_state_store", None)
        key = cursor_key(self.serialize()[1])
        cursor, kept_unread = (None, False) if once else await load_cursor(store, key)
        watch = MessageWatch(
            self.filter, self.poll_interval, cursor=cursor, start_ms=self.since_ms, once=once, log=self.log
        )
        if not once:
            self._say_where_it_starts(cursor, store, kept_unread)
            assert watch.cursor is not None
            if not kept_unread:  # never overwrite a kept cursor that could not be read
                await save_cursor(store, key, watch.cursor)
        async with room_readers().watch(
            self.imkit_conn_id,
            self.room,
            watch,
            make_client=self._client,
            reads_per_minute=approval_reads_per_minute(),
        ) as events:
            async for event in events:
                if isinstance(event, Failed):
                    self.log.error("Room %s cannot be read: %s", self.room, event.error)
                    yield TriggerEvent({"error": event.error})
                    return
                if not once:
                    await save_cursor(store, key, event.cursor)  # before the event: never twice
                if isinstance(event, Fired):
                    message = event.payload["message"]
                    self.log.info(
                        "IMKIT message %s by %s in room %s matches",
                        message["_id"],
                        message["sender"],
                        self.room,
                    )
                    yield TriggerEvent(event.payload)
                    if once:
                        return

    def _say_where_it_starts(self, cursor: Any, store: Any, kept_unread: bool) -> None:
        if kept_unread:
            self.log.warning(
                "Watching room %s from now on: the kept cursor could not be read, so messages "
                "posted since it are skipped",
                self.room,
            )
        elif cursor is not None:
            self.log.info("Watching room %s from the last message read (%d ms)", self.room, cursor.newest_ms)
        elif store is not None:
            self.log.info("Watching room %s for the first time: messages from now on count", self.room)
        elif not AIRFLOW_V_3_3_PLUS:
            self.log.warning(
                "Watching room %s from now on. Airflow before 3.3 keeps no watcher state: if this "
                "watcher ran before this triggerer started, messages posted meanwhile are skipped",
                self.room,
            )
        else:
            self.log.info("Watching room %s from now on (no asset state store)", self.room)

    def _client(self) -> ImkitClient:
        """The connection's client (the shared reader calls this once, in its own thread)."""
        from airflow_provider_imkit.hooks.imkit import ImkitHook

        return ImkitHook(self.imkit_conn_id).get_conn()


class ImkitMessageSensorTrigger(ImkitMessageTrigger):
    """
    The message sensor's deferral: an :class:`ImkitMessageTrigger` that fires **once**, for
    the first message that counts created after ``since_ms``, and keeps no cursor (after a
    triggerer restart it reads from ``since_ms`` again: the same first message decides). Not
    for an ``AssetWatcher``: it would fire the same message again at each start of it, so it
    refuses to run as one.

    :param since_ms: count messages created after this (ms since the epoch): the sensor's
        first try's start.
    :raises ImkitValidationError: ``since_ms`` is not an int, or another argument is bad.
    """

    def __init__(self, room: str, *, since_ms: int, **kwargs: Any) -> None:
        super().__init__(room, **kwargs)
        if isinstance(since_ms, bool) or not isinstance(since_ms, int):
            raise ImkitValidationError("since_ms", f"must be ms since the epoch (an int), got {since_ms!r}")
        self.since_ms = since_ms

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {**kwargs, "since_ms": self.since_ms}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if getattr(self, "asset_state_store", None) is not None:
            raise ImkitValidationError(
                "since_ms",
                "ImkitMessageSensorTrigger fires once, for a sensor: watch assets with ImkitMessageTrigger",
            )
        async for event in super().run():
            yield event
