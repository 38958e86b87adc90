"""
Ask a person in an IMKIT room before publishing, and go on only if they approve.

Shows: a report built upstream, an approval gate in the finance room (the question quotes
the report; only the finance lead's reply counts; nobody answering within 4 hours counts as
"Reject"), publishing on approve, and a tidy "not published" message on reject (the gate
skips ``publish``; ``not_published`` runs only when ``publish`` was skipped).

Answer in the room with ``Approve``/``Reject`` or ``1``/``2``. With the sandbox,
``scripts/demo.sh`` answers as the finance lead (one run each way); ``scripts/demo.sh
--serve`` keeps the inbox page open, where you can answer in the reply box yourself.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG, TriggerRule, task

from airflow_provider_imkit.operators.imkit import ImkitApprovalOperator, ImkitSendMessageOperator

ROOM = "finance-approvals"
SENDER = "airflow-bot"
APPROVERS = ["alice"]  # IMKIT user ids of the people who decide

with DAG(
    dag_id="example_imkit_approval",
    description="Publish the finance report only after a person approves it in IMKIT",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["example", "imkit"],
) as dag:

    @task
    def build_report() -> dict[str, object]:
        """Pretend to build the report; its summary goes to XCom."""
        return {"rows": 1284, "revenue": "EUR 48,210"}

    report = build_report()

    gate = ImkitApprovalOperator(
        task_id="approval_gate",
        room=ROOM,
        sender=SENDER,
        subject="Publish the finance report for {{ ds }}?",
        body=(
            "{% set r = ti.xcom_pull(task_ids='build_report') %}"
            "{{ r['rows'] }} rows, revenue {{ r['revenue'] }}."
        ),
        approvers=APPROVERS,
        timeout=timedelta(hours=4),
        default_option="Reject",
    )

    publish = ImkitSendMessageOperator(
        task_id="publish",
        room=ROOM,
        sender=SENDER,
        message=(
            "Finance report for {{ ds }} published "
            "(approved by {{ ti.xcom_pull(task_ids='approval_gate')['by'] }})."
        ),
    )

    not_published = ImkitSendMessageOperator(
        task_id="not_published",
        room=ROOM,
        sender=SENDER,
        message="Finance report for {{ ds }} not published; the draft stays in the staging area.",
        trigger_rule=TriggerRule.ALL_SKIPPED,
    )

    report >> gate >> publish >> not_published
