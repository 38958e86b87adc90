"""
Start a DAG run from a chat room: ``rerun <dag_id> [<logical date>]`` typed in the ops room.

Shows: an asset with an :class:`~airflow_provider_imkit.triggers.imkit.ImkitMessageTrigger`
watcher (Airflow 3's event-driven scheduling; the triggerer reads the room every 5 seconds),
a DAG scheduled on it that checks each command against an allow-list of DAG ids, starts
the run with ``TriggerDagRunOperator`` and answers in the room with the run id, or says why
it refused.

Who can start what: only messages by ``ALLOWED_PEOPLE`` fire the watcher (anyone else's
are never read as commands), and only the DAGs in ``RERUNNABLE`` are started. A command
older than ``MAX_AGE`` when its run reads it (the DAG was paused meanwhile) is refused, and
an asset event that is not a chat message (made by hand in the UI) is ignored. Nothing from
the chat text reaches the run but the DAG id (checked against the list) and a date (checked
as a date): never pass chat text as ``conf``. Each run's id is made from the message's id,
so one message can never start two runs. A date that already has a run of the target DAG
is answered "Could not start" (Airflow keeps one run per logical date: clear that run in
Airflow to re-run the day).

With the sandbox, ``scripts/demo.sh --celery`` types a command in the inbox page as a person
would, and the transcript shows the answer. On Airflow 2.11 (no asset watchers) only the
target DAG is defined.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, TriggerRule, task

from airflow_provider_imkit.operators.imkit import ImkitSendMessageOperator
from airflow_provider_imkit.triggers.imkit import ImkitMessageTrigger

try:  # Airflow 3: event-driven scheduling
    from airflow.sdk import Asset, AssetWatcher

    HAS_ASSET_WATCHERS = True
except ImportError:  # Airflow 2.11
    HAS_ASSET_WATCHERS = False

ROOM = "ops-commands"
SENDER = "airflow-bot"
#: IMKIT user ids whose messages are read as commands.
ALLOWED_PEOPLE = ["alice", "bob"]
#: DAG ids a command may start.
RERUNNABLE = ["example_imkit_sales_daily"]
#: ``rerun <dag_id>`` or ``rerun <dag_id> 2026-11-30``; the watcher fires for nothing else.
COMMAND = r"^\s*rerun\s+(?P<dag_id>[\w.-]+)(?:\s+(?P<logical_date>\d{4}-\d{2}-\d{2}))?\s*$"
#: A command older than this when its run gets to it (the DAG was paused, say) is not run:
#: whoever typed it is asked to type it again.
MAX_AGE = timedelta(minutes=15)


def chat_run_id(command: dict[str, Any]) -> str:
    """One message, one run: a second start of the same id fails instead of running twice."""
    return "imkit_chat__" + re.sub(r"[^\w.-]", "_", str(command["message_id"]))


with DAG(
    dag_id="example_imkit_sales_daily",
    description="The DAG the chat command example starts: rebuild one day of sales",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["example", "imkit"],
):
    ImkitSendMessageOperator(
        task_id="rebuilt",
        room=ROOM,
        sender=SENDER,
        message="Sales for {{ ds }} rebuilt (run {{ run_id }}).",
        push=False,
    )


if HAS_ASSET_WATCHERS:
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    chat_commands = Asset(
        name="imkit_ops_commands",
        uri=f"imkit://{ROOM}/rerun",  # an identifier of the asset only, not a connection
        watchers=[
            AssetWatcher(
                name="imkit_rerun_commands",
                trigger=ImkitMessageTrigger(ROOM, pattern=COMMAND, senders=ALLOWED_PEOPLE, poll_interval=5),
            )
        ],
    )

    with DAG(
        dag_id="example_imkit_chat_command",
        description="Start an allowed DAG when an allowed person types `rerun <dag_id> [<date>]`",
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        schedule=[chat_commands],
        catchup=False,
        # No max_active_runs=1: on Airflow 3.0-3.3 events that come in while a run is at the
        # cap can wait for the next event (apache/airflow#56050). Runs never clash: each
        # command's run id is its own.
        tags=["example", "imkit"],
    ):

        @task
        def read_commands(**context: Any) -> list[dict[str, Any]]:
            """Each asset event is one message; a run may carry several (typed close together)."""
            commands = []
            for event in context["triggering_asset_events"][chat_commands]:
                payload = (event.extra or {}).get("payload")  # the trigger's {"message", "groups"}
                if not isinstance(payload, dict) or "message" not in payload:
                    print(f"Not a chat command (an asset event made by hand?): {event.extra!r}")
                    continue
                found, groups = payload["message"], payload["groups"]
                typed = datetime.fromtimestamp(found["createdAtMS"] / 1000, tz=UTC)
                command = {
                    "dag_id": groups["dag_id"],
                    "logical_date": groups.get("logical_date"),
                    "by": found["sender"],
                    "message_id": found["_id"],
                    "refusal": None,
                }
                if datetime.now(tz=UTC) - typed > MAX_AGE:
                    minutes = (datetime.now(tz=UTC) - typed).total_seconds() // 60
                    command["refusal"] = f"typed {minutes:.0f} minutes ago; type it again to run it"
                elif command["dag_id"] not in RERUNNABLE:
                    command["refusal"] = f"{command['dag_id']} is not one of {', '.join(RERUNNABLE)}"
                elif command["logical_date"] is not None:
                    try:
                        datetime.strptime(command["logical_date"], "%Y-%m-%d")
                    except ValueError:
                        command["refusal"] = f"{command['logical_date']} is not a date"
                commands.append(command)
            return commands

        @task
        def runs_to_start(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
            """TriggerDagRunOperator's arguments for each allowed command: no chat text in them."""
            return [
                {
                    "trigger_dag_id": c["dag_id"],
                    "trigger_run_id": chat_run_id(c),
                    # A date given: that day's run; none: a run for now.
                    "logical_date": f"{c['logical_date']}T00:00:00+00:00"
                    if c["logical_date"]
                    else datetime.now(tz=UTC).isoformat(),
                }
                for c in commands
                if c["refusal"] is None
            ]

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def answers(commands: list[dict[str, Any]], **context: Any) -> list[str]:
            """What the room is told: the run started (its id), or why not."""
            started = context["ti"].xcom_pull(task_ids="start_run", key="trigger_run_id") or []
            started = {started} if isinstance(started, str) else set(started)
            said = []
            for c in commands:
                asked = f"rerun {c['dag_id']}" + (f" {c['logical_date']}" if c["logical_date"] else "")
                if c["refusal"] is not None:
                    said.append(f"Not started: {c['refusal']} (asked by {c['by']}: {asked!r}).")
                elif chat_run_id(c) in started:
                    said.append(f"Started {c['dag_id']} run {chat_run_id(c)} (asked by {c['by']}).")
                else:  # a run for that date exists already, or the DAG is paused
                    said.append(
                        f"Could not start {c['dag_id']} run {chat_run_id(c)} (asked by {c['by']}): "
                        "see task start_run (a run for that date may exist, or the DAG is paused)."
                    )
            return said

        commands: Any = read_commands()
        start_run = TriggerDagRunOperator.partial(
            task_id="start_run",
            fail_when_dag_is_paused=True,  # never "started" for a paused DAG
        ).expand_kwargs(runs_to_start(commands))
        said = answers(commands)
        start_run >> said
        # push: the person who asked gets a notification (the rebuilt note above sets push=False).
        ImkitSendMessageOperator.partial(task_id="answer", room=ROOM, sender=SENDER, push=True).expand(
            message=said
        )
