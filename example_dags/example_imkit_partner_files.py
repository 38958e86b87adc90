"""
Wait for a partner's bot to say the day's files are uploaded, then ingest them.

Shows: an :class:`~airflow_provider_imkit.sensors.imkit.ImkitMessageSensor` that waits
(deferred, in the triggerer) for a message in the partner room from the partner's bot that
matches a pattern; its named groups (the file count and the batch) reach the next task
through XCom; a note in the room says what was ingested. Only ``partner-bot``'s messages
count: anyone else typing "files uploaded" starts nothing. The sensor counts messages
created after it started: if the partner may post before the run gets there, schedule the DAG
on an asset watched by ``ImkitMessageTrigger`` instead (docs/commands.md).

With the sandbox, ``scripts/demo.sh`` plays the partner's bot: it posts its message as soon
as the sensor first reads the room.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_imkit.operators.imkit import ImkitSendMessageOperator
from airflow_provider_imkit.sensors.imkit import ImkitMessageSensor

ROOM = "partner-drops"
PARTNER_BOT = "partner-bot"

with DAG(
    dag_id="example_imkit_partner_files",
    description="Ingest the partner's files once their bot says they are uploaded",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["example", "imkit"],
):
    uploaded = ImkitMessageSensor(
        task_id="wait_for_files",
        room=ROOM,
        senders=[PARTNER_BOT],
        pattern=r"files uploaded: (?P<count>\d+) files in batch (?P<batch>[\w-]+)",
        poll_interval=5,
        timeout=timedelta(hours=6).total_seconds(),
    )

    @task
    def ingest(found: dict[str, Any]) -> dict[str, Any]:
        """Pretend to load the batch the message names."""
        groups = found["groups"]
        return {"batch": groups["batch"], "files": int(groups["count"]), "by": found["message"]["sender"]}

    found: Any = uploaded.output
    loaded = ingest(found)

    ImkitSendMessageOperator(
        task_id="say_ingested",
        room=ROOM,
        sender="airflow-bot",
        message=(
            "{% set r = ti.xcom_pull(task_ids='ingest') %}"
            "Ingested {{ r['files'] }} files of batch {{ r['batch'] }} for {{ ds }}."
        ),
        push=False,
    ).set_upstream(loaded)
