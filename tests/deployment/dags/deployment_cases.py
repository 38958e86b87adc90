"""DAGs that only the deployment test runs (tests/deployment/): each component's part."""

from __future__ import annotations

import time
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.notifications.imkit import ImkitNotifier
from airflow_provider_imkit.operators.imkit import ImkitSendMessageOperator
from airflow_provider_imkit.testing.control import arm_faults
from airflow_provider_imkit.version_compat import AIRFLOW_V_3_1_PLUS

START = pendulum.datetime(2026, 1, 1, tz="UTC")
BOT = "airflow-bot"
TOKENS = [f"token-{i:02d}" for i in range(40)]


# A send whose first attempt is stored and then dropped, with the room unreadable on the
# first try: the try fails; the Celery retry reads back and finds it. One message.
with DAG("deploy_retry_after_drop", start_date=START, schedule=None, catchup=False, tags=["deploy"]):

    @task
    def arm() -> None:
        arm_faults(
            {"path": "/messages", "kind": "close_after"},
            {"path": "/rooms/deploy-retry/messages/v3", "kind": "status", "status": 500, "times": 2},
        )

    arm() >> ImkitSendMessageOperator(
        task_id="send",
        room="deploy-retry",
        sender=BOT,
        message="loaded once",
        retries=2,
        retry_delay=timedelta(seconds=1),
    )

# 40 mapped sends through a pool of 2 slots: none lost, none doubled, none failed.
with DAG("deploy_mapped_sends", start_date=START, schedule=None, catchup=False, tags=["deploy"]):
    ImkitSendMessageOperator.partial(task_id="send", room="deploy-load", sender=BOT, pool="imkit").expand(
        message=TOKENS
    )

# A Deadline Alert (AsyncCallback with the notifier): awaited in the triggerer.

if AIRFLOW_V_3_1_PLUS:  # Deadline Alerts exist from Airflow 3.1
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    try:
        from airflow.sdk.definitions.callback import AsyncCallback
    except ImportError:  # Airflow 3.1 keeps it next to DeadlineAlert
        from airflow.sdk.definitions.deadline import AsyncCallback  # type: ignore[no-redef,unused-ignore]

    with DAG(
        "deploy_deadline_alert",
        start_date=START,
        schedule=None,
        catchup=False,
        tags=["deploy"],
        deadline=DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(seconds=3),
            # Every public parameter but message (the default text is checked), retry as a
            # RetryPolicy: each must survive the DAG serializer, the scheduler and the triggerer.
            callback=AsyncCallback(
                ImkitNotifier,
                kwargs={
                    "room": "deploy-deadline",
                    "sender": BOT,
                    "message_type": "text",
                    "push": False,
                    "skip_total_badge": True,
                    "mentions": ["alice"],
                    "imkit_conn_id": "imkit_default",
                    "retry": RetryPolicy(max_attempts=2, settle=5.0),
                    "timeout": (5.0, 30.0),
                },
            ),
        ),
    ):

        @task
        def slow() -> None:
            time.sleep(25)

        slow()

# Airflow's own human-in-the-loop ApprovalOperator (3.1+) with an ImkitNotifier: the request
# is posted in the room with the assigned users mentioned; the test answers it through the
# REST API as the simple auth manager's user ("Anonymous"), then the run goes on.
if AIRFLOW_V_3_1_PLUS:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    with DAG("deploy_hitl_in_room", start_date=START, schedule=None, catchup=False, tags=["deploy"]):
        ApprovalOperator(
            task_id="backfill_gate",
            subject="Backfill 30 days before {{ ds }}?",
            body="It re-reads 30 partitions (about 2 hours).",
            assigned_users=[{"id": "alice", "name": "Alice"}, {"id": "Anonymous", "name": "Admin"}],
            notifiers=[ImkitNotifier(room="deploy-hitl", sender=BOT)],
        ) >> ImkitSendMessageOperator(
            task_id="backfill", room="deploy-hitl", sender=BOT, message="backfill started"
        )
