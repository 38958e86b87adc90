"""
Alert an IMKIT room when things fail, and post a summary when they succeed.

``example_imkit_failure_alert`` fails on purpose: its ``load_warehouse`` task raises, the
task-level ImkitNotifier alerts the room with the on-call engineer mentioned, and the
DAG-level callback posts one more alert for the run. The demo reports it as "failed as
intended".

``example_imkit_success_summary`` posts a "pipeline done" summary from its DAG-level
``on_success_callback``, with a custom templated message.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_imkit.notifications.imkit import ImkitNotifier, send_imkit_notification

ALERT_ROOM = "data-alerts"
SENDER = "airflow-bot"
ONCALL = "oncall-dana"

with DAG(
    dag_id="example_imkit_failure_alert",
    description="A task that fails on purpose, alerting IMKIT at task and DAG level",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["example", "imkit"],
    # DAG level: one alert per failed run (the default message names the DAG and the run).
    on_failure_callback=send_imkit_notification(room=ALERT_ROOM, sender=SENDER),
    # Task level, for every task: the default message names the task, the error and the log.
    default_args={
        "retries": 0,
        "on_failure_callback": ImkitNotifier(room=ALERT_ROOM, sender=SENDER, mentions=[ONCALL]),
    },
) as failing_dag:

    @task
    def extract() -> int:
        return 42

    @task
    def load_warehouse() -> None:
        raise RuntimeError("warehouse rejected 42 rows: <constraint violated> on table sales\nretry later")

    extract() >> load_warehouse()


with DAG(
    dag_id="example_imkit_success_summary",
    description="Post a 'pipeline done' summary when the DAG succeeds",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["example", "imkit"],
    on_success_callback=ImkitNotifier(
        room="data-pipeline",
        sender=SENDER,
        message="✅ Daily pipeline {{ dag.dag_id }} done for {{ ds }}: all tasks succeeded.",
        mentions=["alice"],
        push=False,
    ),
) as summary_dag:

    @task
    def transform() -> str:
        return "ok"

    transform()
