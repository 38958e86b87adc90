"""The one way the operators and the notifier send a message: rendered values -> hook -> IMKIT.

Airflow renders templated fields (as text, or as native objects with
``render_template_as_native_obj``); :func:`deliver` turns what it rendered into the hook's
arguments, builds the hook, and sends. A task retry whose earlier try may have delivered
reads the room back first (the ``reconcile`` policy), so the room never holds it twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit import validation
from airflow_provider_imkit.read_back import READ_BACK_CLOCK_SKEW_MS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_imkit.retry import RetryPolicy

log = logging.getLogger(__name__)


def earlier_try_since_ms(context: Mapping[str, Any]) -> int | None:
    """
    When this is a task's second or later try: the time (ms) from which an earlier try may
    have posted, i.e. the start of the DAG run (less a clock-skew margin); else None.
    """
    ti = context.get("ti") or context.get("task_instance")
    try_number = getattr(ti, "try_number", None)
    if not isinstance(try_number, int) or try_number <= 1:
        return None
    dag_run = context.get("dag_run")
    started = getattr(dag_run, "start_date", None) or getattr(ti, "start_date", None)
    if not isinstance(started, datetime):
        return None
    return int(started.timestamp() * 1000) - READ_BACK_CLOCK_SKEW_MS


def deliver(
    *,
    imkit_conn_id: str,
    retry: RetryPolicy | int | None,
    timeout: float | tuple[float, float] | None,
    room: Any,
    sender: Any,
    message: str,
    message_type: Any = "text",
    push: bool | None = None,
    skip_total_badge: bool | None = None,
    mentions: Any = None,
    ensure_sender: bool = False,
    sender_nickname: str | None = None,
    sender_avatar_url: str | None = None,
    earlier_try_since: int | None = None,
) -> dict[str, Any]:
    """
    Send one message with a fresh hook; return the stored message object.

    :param earlier_try_since: ms since the epoch from which an earlier try of the same task
        may have posted this message (:func:`earlier_try_since_ms`); with the ``reconcile``
        policy the room is read back first and a message found there is returned instead.
    :raises ImkitError: typed, as :meth:`ImkitHook.send_message` raises.
    """
    # Imported here: DAG files import the operators, and requests would add ~30 ms to each parse.
    from airflow_provider_imkit.hooks.imkit import ImkitHook

    fields: dict[str, Any] = {
        "room": validation.rendered_id(room),
        "sender": validation.rendered_id(sender),
        "message": message,
        "message_type": validation.rendered_id(message_type),
        "mentions": validation.rendered_ids(mentions),
    }
    with ImkitHook(imkit_conn_id, timeout=timeout, retry=retry) as hook:
        if earlier_try_since is not None and hook.settings.retry.on_ambiguous == "reconcile":
            found = hook.find_message(**fields, since_ms=earlier_try_since)
            if found is not None:
                hook.log.warning(
                    "IMKIT message %s was already stored by an earlier try of this task; not sending again",
                    found.get("_id"),
                )
                return found
        if ensure_sender:
            hook.upsert_user(fields["sender"], nickname=sender_nickname, avatar_url=sender_avatar_url)
        return hook.send_message(**fields, push=push, skip_total_badge=skip_total_badge)
