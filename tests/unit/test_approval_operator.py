"""ImkitApprovalOperator's checks before anything is posted, and decisions from events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_imkit.decisions import Question
from airflow_provider_imkit.exceptions import ImkitApprovalError, ImkitValidationError
from airflow_provider_imkit.operators.approval import ImkitApprovalOperator
from airflow_provider_imkit.operators.imkit import ImkitApprovalOperator as ReExported

GATE: dict[str, Any] = {
    "task_id": "gate",
    "room": "ops",
    "sender": "bot",
    "subject": "Go?",
    "approvers": ["alice"],
}


def test_the_documented_defaults_and_templated_fields() -> None:
    op = ImkitApprovalOperator(**GATE)
    assert ReExported is ImkitApprovalOperator
    assert set(op.template_fields) == {"room", "sender", "subject", "body", "approvers", "options"}
    assert (op.options, op.approve_options, op.fail_on_reject) == (("Approve", "Reject"), ("Approve",), False)
    assert (op.timeout, op.default_option, op.poll_interval, op.deferrable) == (
        timedelta(days=1),
        None,
        10,
        True,
    )
    assert op.body is None and op.imkit_conn_id == "imkit_default"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"approve_options": ["Yes"]}, "approve_options[0]"),
        ({"default_option": "Maybe"}, "default_option[0]"),
        ({"options": ["Go", "go"]}, "options[1]"),
        ({"options": []}, "options"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "1 day"}, "timeout"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"fail_on_reject": "yes"}, "fail_on_reject"),
    ],
)
def test_bad_arguments_fail_the_dag_file_import(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ImkitValidationError) as err:
        ImkitApprovalOperator(**{**GATE, **kwargs})
    assert err.value.field == field


def test_templated_options_are_checked_when_the_task_runs() -> None:
    op = ImkitApprovalOperator(**{**GATE, "options": "{{ var.json.choices }}", "approve_options": ["Ship"]})
    op.options = '["Ship", "Hold"]'  # as rendered
    assert op._choices(op.options) == (["Ship", "Hold"], ["Ship"], None)


def test_the_sender_cannot_be_an_approver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_IMKIT_DEFAULT", raising=False)  # nothing could be sent anyway
    op = ImkitApprovalOperator(**{**GATE, "approvers": "alice,bot"})
    with pytest.raises(ImkitValidationError) as err:
        op.execute({})
    assert err.value.field == "approvers" and "'bot'" in str(err.value)


QUESTION = Question(
    "ops", "bot", ("alice",), ("Approve", "Reject"), "q1", 1_000, 61_000, ("Approve",), "Approve"
)


def test_a_timeout_without_reading_the_room_never_applies_the_default() -> None:
    """A reply made in time may be unread: an approving default must not go ahead."""
    op = ImkitApprovalOperator(**{**GATE, "default_option": "Approve"})
    event = {"status": "timeout", "error": "the room could not be read", "question": QUESTION.to_json()}
    with pytest.raises(ImkitApprovalError, match="no decision, the room could not be read"):
        op.execute_complete({}, event)


def test_an_event_without_its_question_is_an_error() -> None:
    with pytest.raises(ImkitApprovalError, match="carries no question"):
        ImkitApprovalOperator(**GATE).execute_complete({}, {"status": "chosen", "chosen": "Approve"})
