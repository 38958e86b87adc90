"""DAGs for the message sensor's end-to-end tests: each waits in its own room; the test
scripts the room's people (they post right after the sensor's first read) before the runs."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_imkit.sensors.imkit import ImkitMessageSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
FILES = r"files uploaded: (?P<count>\d+)"


def sensor_dag(dag_id: str, **sensor: Any) -> DAG:
    """wait (the sensor) -> echo (what the next task gets through XCom)."""
    with DAG(
        dag_id, start_date=START, schedule=None, catchup=False, tags=["imkit-e2e"], **sensor.pop("dag", {})
    ) as dag:
        found = ImkitMessageSensor(task_id="wait", poll_interval=1, **sensor)

        @task
        def echo(payload: dict[str, Any]) -> dict[str, Any]:
            return {"sender": payload["message"]["sender"], "groups": payload["groups"]}

        echo(found.output)  # type: ignore[arg-type]
    return dag


sensor_dag("imkit_e2e_sensor_deferred", room="sense-deferred", senders=["partner-bot"], pattern=FILES)
sensor_dag(
    "imkit_e2e_sensor_in_worker",
    room="sense-worker",
    senders="partner-bot",
    pattern=FILES,
    deferrable=False,
)
sensor_dag(
    "imkit_e2e_sensor_soft_fail",
    room="sense-quiet",
    senders=["partner-bot"],
    deferrable=False,
    timeout=3,
    soft_fail=True,
)
sensor_dag(
    "imkit_e2e_sensor_templated",
    room="{{ params.room }}",
    senders="{{ params.people }}",
    pattern="^{{ params.word }}$",
    dag={"params": {"room": "sense-templated", "people": "alice,bob", "word": "go"}},
)
