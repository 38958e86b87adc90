"""DAGs for the approval end-to-end tests: each asks in its own room; the test queues the
approvers' replies in the sandbox (scripted people) before the runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, TriggerRule, task

from airflow_provider_imkit.operators.imkit import ImkitApprovalOperator, ImkitSendMessageOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
FAST: dict[str, Any] = {"poll_interval": 0.2, "retry_delay": timedelta(seconds=0)}


def gate_dag(dag_id: str, room: str, **gate: Any) -> DAG:
    """report -> gate -> publish -> (after a skipped publish) tidy."""
    with DAG(dag_id, start_date=START, schedule=None, catchup=False, tags=["imkit-e2e"]) as dag:

        @task
        def report() -> int:
            return 1284

        ask = ImkitApprovalOperator(
            task_id="gate",
            room=room,
            sender="bot",
            subject="Publish {{ ti.xcom_pull(task_ids='report') }} rows for {{ ds }}?",
            body="Run {{ run_id }}",
            approvers=gate.pop("approvers", "alice,bob"),
            **{**FAST, **gate},
        )
        publish = ImkitSendMessageOperator(task_id="publish", room=room, sender="bot", message="published")
        tidy = ImkitSendMessageOperator(
            task_id="tidy",
            room=room,
            sender="bot",
            message="not published",
            trigger_rule=TriggerRule.ALL_SKIPPED,
        )
        report() >> ask >> publish >> tidy
    return dag


gate_dag("imkit_e2e_approve", "appr-yes")
gate_dag("imkit_e2e_reject", "appr-no")
gate_dag("imkit_e2e_reject_fails", "appr-fail", fail_on_reject=True, retries=2)
gate_dag(
    "imkit_e2e_timeout_default",
    "appr-late",
    timeout=timedelta(seconds=1),
    default_option="Reject",
    deferrable=False,  # the wait in the worker
)
gate_dag("imkit_e2e_timeout_fails", "appr-never", timeout=1, retries=2)
gate_dag(
    "imkit_e2e_non_approver",
    "appr-who",
    approvers=["alice"],
    options=["Ship it", "Hold"],
    approve_options=["Ship it"],
)
# Answered by a person typing in the sandbox's inbox page (tests/integration/test_inbox_browser.py).
gate_dag("imkit_e2e_browser", "appr-browser", approvers=["alice"], timeout=300)
