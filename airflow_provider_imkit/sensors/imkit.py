"""ImkitMessageSensor: wait for a message in an IMKIT room (a partner's bot saying the files
are uploaded, a person saying go) and hand it on through XCom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_imkit import DEFAULT_CONN_ID
from airflow_provider_imkit.exceptions import ImkitRoomReadError
from airflow_provider_imkit.operators.base import is_templated
from airflow_provider_imkit.rooms.match import Failed, Fired, MessageFilter, MessageWatch
from airflow_provider_imkit.triggers.imkit import ImkitMessageSensorTrigger, poll_seconds

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_imkit.client import ImkitClient


class ImkitMessageSensor(BaseSensorOperator):
    """
    Wait for the first message in ``room`` that counts, created after the task's first try
    started: by one of ``senders``, of one of ``message_types``, not recalled or deleted, not
    posted by the provider in this process, and (with a ``pattern``) text in which
    ``re.search`` finds it. Its XCom (``return_value``) is the message and the pattern's named groups::

        {"message": {"_id", "room", "message", "messageType", "sender", "createdAtMS"},
         "groups": {<named groups>}}

    The room is read with ``GET /rooms/{room}/messages/v3`` every ``poll_interval`` seconds.
    Deferrable by default: the wait is an
    :class:`~airflow_provider_imkit.triggers.imkit.ImkitMessageSensorTrigger` in the triggerer (no
    worker slot held), sharing the room's reader and the read budget
    (``[imkit] approval_reads_per_minute``) with every other wait on the room.
    ``deferrable=False`` waits in the worker, poking every ``poll_interval`` seconds (``mode``
    ``"poke"`` or ``"reschedule"``, as Airflow's sensors). ``timeout`` (default 7 days),
    ``soft_fail`` and ``mode`` are Airflow's, in both forms. A later try counts the messages
    created since the DAG run started (the first try's start is not kept across tries), so a
    message a failed try missed is still found. Transient read errors are retried (deferred: with
    backoff up to 5 minutes; in the worker: at the next poke); an unknown room or a bad key
    fails the task with
    :class:`~airflow_provider_imkit.exceptions.ImkitRoomReadError`.

    :param room: the room id (templated).
    :param pattern: a Python regular expression searched in the message text (templated); None:
        any message of the allowed types by an allowed sender.
    :param senders: the user ids whose messages count, at least one (templated): a list, or
        text holding one id, ``"a,b"`` or a JSON list, the forms ``mentions`` takes.
    :param message_types: message types that count (default ``("text",)``).
    :param poll_interval: seconds between reads of the room (default 10; also the poke interval).
    :param deferrable: wait in the triggerer (default True).
    :param imkit_conn_id: the Airflow connection of type ``imkit``.
    :raises ImkitValidationError: a bad argument, named, before any request (at DAG parse time
        when the value is not a template).
    """

    template_fields: Sequence[str] = ("room", "pattern", "senders")
    ui_color = "#4f8df7"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        room: str,
        pattern: str | None = None,
        senders: str | Sequence[str],
        message_types: str | Sequence[str] = ("text",),
        poll_interval: float = 10.0,
        deferrable: bool = True,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        interval = poll_seconds(poll_interval)
        kwargs.setdefault("poke_interval", interval)
        super().__init__(**kwargs)
        self.room = room
        self.pattern = pattern
        self.senders = senders
        self.message_types = message_types
        self.poll_interval = interval
        self.deferrable = deferrable
        self.imkit_conn_id = imkit_conn_id
        self._watch: MessageWatch | None = None
        # A bad argument fails the DAG file's import, not the run; a templated one is checked
        # once rendered (a stand-in takes its place here).
        MessageFilter.build(
            "room" if is_templated(room) else room,
            pattern=None if is_templated(pattern) else pattern,
            senders="someone" if is_templated(senders) else senders,
            message_types=message_types,
        )

    def _filter(self) -> MessageFilter:
        return MessageFilter.build(
            self.room, pattern=self.pattern, senders=self.senders, message_types=self.message_types
        )

    def _new_watch(self, context: Context) -> MessageWatch:
        """The wait from the first try's start (the first poke's in reschedule mode)."""
        since_ms = first_try_started_ms(context, reschedule=bool(getattr(self, "reschedule", False)))
        return MessageWatch(self._filter(), self.poll_interval, start_ms=since_ms, once=True, log=self.log)

    def execute(self, context: Context) -> Any:
        self._watch = watch = self._new_watch(context)
        rule, since_ms = watch.filter, watch.since_ms
        self.log.info(
            "Waiting%s for a message in room %s by %s created after %s",
            " in the triggerer" if self.deferrable else "",
            rule.room, ", ".join(rule.senders), _iso(since_ms),
        )  # fmt: skip
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=ImkitMessageSensorTrigger(
                rule.room,
                pattern=rule.pattern,
                senders=list(rule.senders),
                message_types=list(rule.message_types),
                poll_interval=self.poll_interval,
                imkit_conn_id=self.imkit_conn_id,
                since_ms=since_ms,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """One read of the room (the non-deferrable wait)."""
        from airflow_provider_imkit.hooks.imkit import ImkitHook
        from airflow_provider_imkit.rooms.read import read_room

        if self._watch is None:  # reschedule mode: each poke is a new process
            self._watch = self._new_watch(context)
        watch = self._watch
        with ImkitHook(self.imkit_conn_id) as hook:
            client: ImkitClient = hook.get_conn()
            events, _ = watch.take(read_room(client, watch.filter.room, watch.since_ms))
        for event in events:
            if isinstance(event, Failed):
                raise ImkitRoomReadError(f"room {watch.filter.room!r} cannot be read: {event.error}")
            if isinstance(event, Fired):
                return PokeReturnValue(is_done=True, xcom_value=self._found(event.payload))
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Back from the triggerer: the matching message's payload (the task's XCom)."""
        if not isinstance(event, dict) or "message" not in event:
            error = event.get("error") if isinstance(event, dict) else f"unexpected trigger event {event!r}"
            raise ImkitRoomReadError(f"room {self.room!r} cannot be read: {error}")
        return self._found(event)

    def _found(self, payload: dict[str, Any]) -> dict[str, Any]:
        message = payload["message"]
        self.log.info(
            "IMKIT message %s by %s in room %s: done", message["_id"], message["sender"], message["room"]
        )
        return payload


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def first_try_started_ms(context: Context, *, reschedule: bool = False) -> int:
    """When the sensor's wait began (ms since the epoch): this try's start on its first try
    (the first poke's in reschedule mode); the DAG run's start on a later try, since no try
    keeps the first one's (a message a failed try missed is still found); else now."""
    ti: Any = context.get("ti") or context.get("task_instance")
    started: Any = None
    if ti is not None and isinstance(getattr(ti, "try_number", None), int) and ti.try_number > 1:
        started = getattr(context.get("dag_run"), "start_date", None)
    elif ti is not None:
        first = getattr(ti, "get_first_reschedule_date", None)
        if reschedule and callable(first):
            started = first(context)
        started = started or getattr(ti, "start_date", None)
    if isinstance(started, datetime):
        return int(started.timestamp() * 1000)
    return int(datetime.now().timestamp() * 1000)
