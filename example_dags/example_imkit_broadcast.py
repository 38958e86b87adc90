"""
Broadcast to several rooms in one request, and retract a "running" notice when done.

Shows: a sender created on the fly (``ensure_sender``), a "pipeline running" message whose
id goes to XCom, one batch request to three rooms with per-room ``$name$`` values built
from an upstream XCom, and the "running" message recalled at the end, whatever happened
(``trigger_rule="all_done"``).
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_imkit.operators.imkit import (
    ImkitBatchSendMessageOperator,
    ImkitRecallMessageOperator,
    ImkitSendMessageOperator,
)

ROOM = "data-pipeline"
BOT = "release-bot"
TEAMS = {"team-analytics": "Analytics", "team-finance": "Finance", "team-marketing": "Marketing"}

with DAG(
    dag_id="example_imkit_broadcast",
    description="One batch request to many rooms, and a recalled 'running' notice",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["example", "imkit"],
) as dag:
    running = ImkitSendMessageOperator(
        task_id="announce_running",
        room=ROOM,
        sender=BOT,
        ensure_sender=True,  # creates or updates the bot user first
        sender_nickname="Release Bot",
        message="⏳ {{ dag.dag_id }} is running for {{ ds }}…",
        push=False,
    )

    @task
    def count_rows() -> dict[str, int]:
        """Pretend to count the new rows of each team."""
        return {"team-analytics": 120, "team-finance": 75, "team-marketing": 33}

    counts = count_rows()

    broadcast = ImkitBatchSendMessageOperator(
        task_id="broadcast",
        rooms=list(TEAMS),
        sender=BOT,
        message="Hello $team$: $rows$ new rows for {{ ds }} are in your dashboards.",
        values={
            room: {"$team$": team, "$rows$": f"{{{{ ti.xcom_pull(task_ids='count_rows')['{room}'] }}}}"}
            for room, team in TEAMS.items()
        },
    )

    recall = ImkitRecallMessageOperator(
        task_id="recall_running",
        room=ROOM,
        message_id="{{ ti.xcom_pull(task_ids='announce_running')['_id'] }}",
        trigger_rule="all_done",
    )

    running >> counts >> broadcast >> recall
