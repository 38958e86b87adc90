"""
Post progress messages of a small pipeline to IMKIT rooms.

Shows: a notify step at the start and the end, a message built from an upstream task's
XCom through templating, an announcement without push notifications, @mentions, and a
mapped fan-out of one message to several rooms. The ``_id`` of every sent message is the
task's XCom ``return_value``.

Needs an ``imkit_default`` connection (see the README), or run it against the sandbox:
``scripts/demo.sh``.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_imkit.operators.imkit import ImkitSendMessageOperator

ROOM = "data-pipeline"
SENDER = "airflow-bot"
TEAM_ROOMS = ["team-analytics", "team-finance", "team-marketing"]

with DAG(
    dag_id="example_imkit_send_message",
    description="Notify IMKIT rooms about a pipeline's progress",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["example", "imkit"],
) as dag:
    notify_start = ImkitSendMessageOperator(
        task_id="notify_start",
        room=ROOM,
        sender=SENDER,
        message="Pipeline {{ dag.dag_id }} started for {{ ds }} (run {{ run_id }})",
    )

    @task
    def extract() -> int:
        """Pretend to load some rows; the count goes to XCom."""
        return 1284

    rows = extract()

    report = ImkitSendMessageOperator(
        task_id="report_rows",
        room=ROOM,
        sender=SENDER,
        message="Loaded {{ ti.xcom_pull(task_ids='extract') }} rows into the warehouse 📦 倉庫已更新",
        mentions=["alice", "bob"],
    )

    announce = ImkitSendMessageOperator(
        task_id="announce_quietly",
        room=ROOM,
        sender=SENDER,
        message="Nightly data for {{ ds }} is ready. No action needed.",
        message_type="announcement",
        push=False,
    )

    fan_out = ImkitSendMessageOperator.partial(
        task_id="notify_teams",
        sender=SENDER,
        message="Fresh data for {{ ds }} is available in your dashboards.",
    ).expand(room=TEAM_ROOMS)

    notify_end = ImkitSendMessageOperator(
        task_id="notify_end",
        room=ROOM,
        sender=SENDER,
        message="Pipeline {{ dag.dag_id }} finished. First message id: "
        "{{ ti.xcom_pull(task_ids='notify_start')['_id'] }}",
    )

    notify_start >> rows >> report >> announce >> fan_out >> notify_end
