"""The notifier's text for a human-in-the-loop request (Airflow 3.1+ ``HITLOperator``).

An ``ImkitNotifier`` in ``notifiers=[...]`` of ``HITLOperator``, ``ApprovalOperator``,
``HITLBranchOperator`` or ``HITLEntryOperator`` is called on the worker right after the
request is stored; without a ``message`` of its own it posts the request: subject, body,
options, who is asked (mentioned) and the link to the task's required-actions page.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_imkit.client import validation
from airflow_provider_imkit.decisions import numbered
from airflow_provider_imkit.exceptions import ImkitValidationError
from airflow_provider_imkit.notifications.default_message import event_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HitlRequest:
    """What the room is told: the text, and the assigned users to mention (IMKIT user ids)."""

    text: str
    mentions: list[str]


@functools.cache
def _hitl_operator_class() -> type | None:
    try:
        from airflow.providers.standard.operators.hitl import HITLOperator
    except Exception:  # Airflow < 3.1, or an older standard provider: no HITL operators
        return None
    return HITLOperator


def _hitl_task(context: Mapping[str, Any]) -> Any:
    cls = _hitl_operator_class()
    task = context.get("task")
    return task if cls is not None and isinstance(task, cls) else None


def _is_user_id(value: str) -> bool:
    """An assigned user's id that can be an IMKIT user id (others are left unmentioned)."""
    try:
        validation.user_ids("mentions", [value])
    except ImkitValidationError:
        log.warning("IMKIT notifier: assigned user %r is not an IMKIT user id; not mentioned", value)
        return False
    return True


def hitl_request(context: Mapping[str, Any]) -> HitlRequest | None:
    """The request's text when the context is a HITL task asking (not its failure or success
    callbacks, which get the usual alert); else None."""
    task = _hitl_task(context)
    if task is None or event_of(context) not in ("started", "finished"):
        return None
    users = task.assigned_users or []
    ids = [u.get("id") if isinstance(u, Mapping) else getattr(u, "id", None) for u in users]
    mentions = [str(user) for user in ids if user and _is_user_id(str(user))]
    lines = [f"Input needed: {str(task.subject).strip()}"]
    if task.body and str(task.body).strip():
        lines += ["", str(task.body).strip()]
    options = list(task.options or [])
    if options:
        lines += ["", *numbered(options)]
    defaults = list(task.defaults or [])
    timeout = (getattr(task, "hitl_summary_extra", None) or {}).get("timeout_datetime")
    if timeout:
        fallback = f"{', '.join(defaults)} is chosen" if defaults else "the task fails"
        lines.append(f"If nobody answers by {timeout}, {fallback}.")
    if mentions:
        lines.append("Asked: " + ", ".join(f"@{user}" for user in mentions))
    try:
        link = task.generate_link_to_ui_from_context(context=context)
    except Exception:  # no [api] base_url: Airflow cannot build the link
        link = None
    lines.append(f"Answer in Airflow: {link}" if link else "Answer in Airflow: the task's Required Actions.")
    return HitlRequest("\n".join(lines), mentions)
