"""Approvals asked in an IMKIT room: the question, which replies count, and the wait for one.

The operator posts a question; then the room is read (``GET /rooms/{room}/messages/v3``,
messages created since the question) until an approver replies with an option's name or
number, or the time is up. The same :class:`ApprovalWait` decides for the trigger (in the
triggerer) and for the non-deferrable wait (in the worker). No Airflow in here.
"""

from __future__ import annotations

from airflow_provider_imkit.decisions.options import (
    DEFAULT_APPROVE_OPTIONS,
    DEFAULT_OPTIONS,
    MAX_OPTION_CHARS,
    approvers_list,
    options_list,
    pick_options,
)
from airflow_provider_imkit.decisions.question import DEADLINE_GRACE_MS, Question, chosen_option, created_ms
from airflow_provider_imkit.decisions.texts import (
    decision_text,
    human_duration,
    is_outcome_text,
    numbered,
    question_line,
    question_text,
    timeout_text,
)
from airflow_provider_imkit.decisions.wait import (
    CLOCK_AGREEMENT_S,
    CURSOR_OVERLAP_MS,
    MAX_ERROR_BACKOFF,
    POLL_PAGES,
    READ_GRACE_AFTER_TIMEOUT,
    ApprovalWait,
    Outcome,
    imkit_now,
    undecided_question,
)

__all__ = [
    "CLOCK_AGREEMENT_S",
    "CURSOR_OVERLAP_MS",
    "DEADLINE_GRACE_MS",
    "DEFAULT_APPROVE_OPTIONS",
    "DEFAULT_OPTIONS",
    "MAX_ERROR_BACKOFF",
    "MAX_OPTION_CHARS",
    "POLL_PAGES",
    "READ_GRACE_AFTER_TIMEOUT",
    "ApprovalWait",
    "Outcome",
    "Question",
    "approvers_list",
    "chosen_option",
    "created_ms",
    "decision_text",
    "human_duration",
    "imkit_now",
    "is_outcome_text",
    "numbered",
    "options_list",
    "pick_options",
    "question_line",
    "question_text",
    "timeout_text",
    "undecided_question",
]
