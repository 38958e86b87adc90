"""DAGs for the delivery end-to-end tests: one per case a user reported (issue: exactly once).

Each DAG arms the sandbox's faults itself (a first task posts them to the sandbox's control
API), so the cases stay independent when run one after another in one process. The tests in
tests/e2e/test_delivery.py run them with ``dag.test()`` and read the rooms, XComs and logs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_imkit.notifications.imkit import ImkitNotifier
from airflow_provider_imkit.operators.imkit import ImkitSendMessageOperator
from airflow_provider_imkit.testing.control import arm_faults

START = pendulum.datetime(2026, 1, 1, tz="UTC")
BOT = "bot"
NO_RETRY_DELAY: dict[str, Any] = {"retry_delay": timedelta(seconds=0)}


def dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(dag_id, start_date=START, schedule=None, catchup=False, tags=["imkit-e2e"], **kwargs)


# 1. The server stores the message and drops the connection; the room cannot be read back
#    on the first try, so the try fails; Airflow's retry reads back and finds it: ONE message.
with dag("imkit_e2e_retry_after_drop"):

    @task
    def arm() -> None:
        arm_faults(
            {"path": "/messages", "kind": "close_after"},
            {"path": "/rooms/e2e-retry/messages/v3", "kind": "status", "status": 500, "times": 2},
        )

    arm() >> ImkitSendMessageOperator(
        task_id="send", room="e2e-retry", sender=BOT, message="nightly load done", retries=2, **NO_RETRY_DELAY
    )

# 1b. The same drop with a readable room: the hook reads back within the first try.
with dag("imkit_e2e_read_back_found"):

    @task
    def arm_drop() -> None:
        arm_faults({"path": "/messages", "kind": "close_after"})

    arm_drop() >> ImkitSendMessageOperator(
        task_id="send", room="e2e-found", sender=BOT, message="report ready", retries=1, **NO_RETRY_DELAY
    )

# 2. One notifier in default_args, two failing tasks: each alert names its own task.
with dag(
    "imkit_e2e_notifier_reuse",
    default_args={
        "on_failure_callback": ImkitNotifier(
            room="e2e-alerts", sender=BOT, message="{{ ti.task_id }} failed in {{ dag.dag_id }}"
        )
    },
):

    @task
    def extract_orders() -> None:
        raise RuntimeError("orders source down")

    @task
    def extract_users() -> None:
        raise RuntimeError("users source down")

    extract_orders()
    extract_users()

# 3. Native rendering: a message that renders to an int is sent as its text, by the operator
#    and by the notifier alike.
with dag("imkit_e2e_native", render_template_as_native_obj=True):

    @task
    def count_rows() -> int:
        return 1284

    @task(
        on_failure_callback=ImkitNotifier(
            room="e2e-native", sender=BOT, message="{{ ti.xcom_pull(task_ids='count_rows') }}"
        )
    )
    def publish() -> None:
        raise RuntimeError("publish failed")

    rows = count_rows()
    report = ImkitSendMessageOperator(
        task_id="report", room="e2e-native", sender=BOT, message="{{ ti.xcom_pull(task_ids='count_rows') }}"
    )
    rows >> report >> publish()

# 4. Mentions from a JSON Variable and from "a,b": two users mentioned, every time.
with dag(
    "imkit_e2e_mentions",
    on_success_callback=ImkitNotifier(
        room="e2e-mentions", sender=BOT, message="all done", mentions="{{ var.json.oncall_users }}"
    ),
):
    from_variable = ImkitSendMessageOperator(
        task_id="from_variable",
        room="e2e-mentions",
        sender=BOT,
        message="from a variable",
        mentions="{{ var.json.oncall_users }}",
    )
    from_text = ImkitSendMessageOperator(
        task_id="from_text", room="e2e-mentions", sender=BOT, message="from text", mentions="alice,bob"
    )
    from_variable >> from_text

# 5. A connection URI http://:KEY@host:port is plain http; a bare host that answers plain
#    http fails at once (no Airflow retries) saying to write http://.
with dag("imkit_e2e_scheme"):
    ImkitSendMessageOperator(
        task_id="http_uri", room="e2e-scheme", sender=BOT, message="over http", imkit_conn_id="imkit_http_uri"
    )
    ImkitSendMessageOperator(
        task_id="bare_host",
        room="e2e-scheme",
        sender=BOT,
        message="over assumed https",
        imkit_conn_id="imkit_bare_host",
        retries=2,
        **NO_RETRY_DELAY,
    )

# 6. Errors that say what to fix: the room, the sender, the connection.
with dag("imkit_e2e_error_subjects"):
    ImkitSendMessageOperator(task_id="missing_room", room="no-such-room", sender=BOT, message="x")
    ImkitSendMessageOperator(task_id="missing_sender", room="e2e-scheme", sender="ghost-user", message="x")
    ImkitSendMessageOperator(
        task_id="wrong_key", room="e2e-scheme", sender=BOT, message="x", imkit_conn_id="imkit_wrong_key"
    )

# 7. One default-text notifier at every place a notifier can sit: each alert says what happened.
PLACES = ImkitNotifier(room="e2e-places", sender=BOT)
with dag("imkit_e2e_callback_places", on_success_callback=PLACES, on_failure_callback=PLACES):
    from airflow.providers.common.compat.sdk import AirflowSkipException

    @task(on_execute_callback=PLACES, on_success_callback=PLACES)
    def starts_and_succeeds() -> None:
        pass

    @task(retries=1, on_retry_callback=PLACES, on_success_callback=PLACES, **NO_RETRY_DELAY)
    def fails_once(ti: Any = None) -> None:
        if ti is not None and ti.try_number == 1:
            raise RuntimeError("first try fails")

    @task(on_skipped_callback=PLACES)
    def skips() -> None:
        raise AirflowSkipException("nothing to do today")

    @task(on_failure_callback=PLACES)
    def fails() -> None:
        raise RuntimeError("broken for good")

    starts_and_succeeds() >> fails_once() >> skips()
    fails()
