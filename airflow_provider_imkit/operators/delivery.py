"""The one way the operators and the notifier send a message: rendered values -> hook -> IMKIT.

Airflow renders templated fields (as text, or as native objects with
``render_template_as_native_obj``); :func:`deliver` turns what it rendered into the hook's
arguments, builds the hook, and sends. A task retry whose earlier try may have delivered
reads the room back first (the ``reconcile`` policy, under the settle rule), so the room
never holds it twice.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_imkit.client import validation
from airflow_provider_imkit.client.read_back import READ_BACK_CLOCK_SKEW_MS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_imkit.client.retry import RetryPolicy

log = logging.getLogger(__name__)


class EarlierTry(NamedTuple):
    """What a task's second or later try knows of its earlier tries.

    :param since_ms: ms since the epoch from which an earlier try may have posted: the DAG
        run's start, less a clock-skew margin.
    :param ended_by: seconds since the epoch by which every earlier try had ended: this try's
        start (Airflow starts a try only once the one before it is over). The settle rule
        counts from here: a read-back proves an earlier try's message absent only when it
        starts ``settle`` seconds after this.
    """

    since_ms: int
    ended_by: float


def earlier_try(context: Mapping[str, Any]) -> EarlierTry | None:
    """:class:`EarlierTry` when this is a task's second or later try, else None."""
    ti = context.get("ti") or context.get("task_instance")
    try_number = getattr(ti, "try_number", None)
    if not isinstance(try_number, int) or try_number <= 1:
        return None
    dag_run = context.get("dag_run")
    run_started = getattr(dag_run, "start_date", None) or getattr(ti, "start_date", None)
    if not isinstance(run_started, datetime):
        return None
    try_started = getattr(ti, "start_date", None)
    ended_by = try_started.timestamp() if isinstance(try_started, datetime) else time.time()
    return EarlierTry(int(run_started.timestamp() * 1000) - READ_BACK_CLOCK_SKEW_MS, ended_by)


def deliver(
    *,
    imkit_conn_id: str,
    retry: RetryPolicy | int | None,
    timeout: float | tuple[float, float] | None,
    message: Mapping[str, Any],
    ensure_sender: bool = False,
    sender_nickname: str | None = None,
    sender_avatar_url: str | None = None,
    earlier: EarlierTry | None = None,
) -> dict[str, Any]:
    """
    Send one message with a fresh hook; return the stored message object.

    :param message: the message's parameters as rendered (:data:`~airflow_provider_imkit.
        client.validation.MESSAGE_PARAMS`; ``message`` already a string): rendered lists and
        ids are read as the client's arguments. Missing ones take the client's defaults.
    :param ensure_sender: create or update the sender first (``POST /admin/clients``) with
        ``sender_nickname`` and ``sender_avatar_url``.
    :param earlier: a later try's knowledge of its earlier tries (:func:`earlier_try`); with
        the ``reconcile`` policy the room is read back first, under the settle rule counted
        from the end of the earlier tries, and a message found there is returned instead.
    :raises ImkitError: typed, as :meth:`ImkitClient.send_message` raises.
    """
    # Imported here: DAG files import the operators, and requests would add ~30 ms to each parse.
    from airflow_provider_imkit.hooks.imkit import ImkitHook

    fields = {"message_type": "text", **message}
    for name in ("room", "sender", "message_type"):
        fields[name] = validation.rendered_id(fields[name])
    fields["mentions"] = validation.rendered_ids(fields.get("mentions"))
    with ImkitHook(imkit_conn_id, timeout=timeout, retry=retry) as hook:
        policy = hook.settings.retry
        if earlier is not None and policy.on_ambiguous == "reconcile":
            identity = {
                name: fields[name] for name in ("room", "sender", "message", "message_type", "mentions")
            }
            found = hook.find_message(
                **identity, since_ms=earlier.since_ms, settled_after=earlier.ended_by + policy.settle
            )
            if found is not None:
                hook.log.warning(
                    "IMKIT message %s was already stored by an earlier try of this task; not sending again",
                    found.get("_id"),
                )
                return found
        if ensure_sender:
            hook.upsert_user(fields["sender"], nickname=sender_nickname, avatar_url=sender_avatar_url)
        return hook.send_message(**fields)
