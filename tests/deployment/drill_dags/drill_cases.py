"""DAGs for the fault drills (tests/deployment/drills.py, ``scripts/demo.sh --celery --faults``):
each is triggered by a drill that kills or restarts a component while it runs."""

from __future__ import annotations

import time
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_imkit.operators.approval import ImkitApprovalOperator
from airflow_provider_imkit.operators.imkit import ImkitSendMessageOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
BOT = "drill-bot"
#: The late-store drill's mapped sends.
LATE_SENDS = 40


def dag(dag_id: str) -> DAG:
    return DAG(dag_id, start_date=START, schedule=None, catchup=False, tags=["drill"])


# The Celery worker is SIGKILLed while this send waits for IMKIT's answer: the retried task
# (once Airflow sees the dead task) reads the room back and finds the message: one in the room.
with dag("drill_worker_kill"):
    ImkitSendMessageOperator(
        task_id="send",
        room="drill-worker",
        sender=BOT,
        message="drill: the worker was killed while this was being sent",
        retries=2,
        retry_delay=timedelta(seconds=2),
    )

# The triggerer is killed and restarted while this gate waits: one question, one decision,
# one acknowledgement.
with dag("drill_approval"):
    ImkitApprovalOperator(
        task_id="gate",
        room="drill-approval",
        sender=BOT,
        subject="Drill: go ahead with the load?",
        approvers=["alice"],
        timeout=timedelta(minutes=10),
        poll_interval=2,
    ) >> ImkitSendMessageOperator(
        task_id="go", room="drill-approval", sender=BOT, message="drill: going ahead"
    )

# Fails at once: the deployment-wide alert is the drill's subject (scheduler killed, two
# schedulers). No IMKIT code in it.
with dag("drill_fail"):

    @task
    def fail() -> None:
        raise RuntimeError("drill: this run fails on purpose")

    fail()

# Redis (the Celery broker) is restarted while these run: every run finishes, each message once.
with dag("drill_redis"):

    @task
    def wait(index: int) -> int:
        time.sleep(4)
        return index

    ImkitSendMessageOperator.partial(task_id="send", room="drill-redis", sender=BOT).expand(
        message=wait.expand(index=list(range(6))).map(lambda index: f"drill: through a Redis restart {index}")
    )

# 40 mapped sends while IMKIT stores each 1.5-4 s after the request and the connection's read
# timeout is 1 s: each is found by its read-back (the settle rule), none is posted twice.
with dag("drill_late_store"):
    ImkitSendMessageOperator.partial(
        task_id="send", room="drill-late", sender=BOT, imkit_conn_id="imkit_slow"
    ).expand(message=[f"drill: stored late {index}" for index in range(LATE_SENDS)])
