"""The demo on a real deployment: ``scripts/demo.sh --celery``.

Postgres, Redis, the sandbox, and Airflow's api-server, scheduler, dag-processor, triggerer
and one Celery worker (concurrency 2), each its own process; the IMKIT connection stored in
the metadata database. Every example DAG is unpaused and triggered through the REST API;
then each room's transcript, each DAG's state, which component sent each alert, the time
from a task's failure to its alert, and the memory of each component. Exits 1 when a DAG
did not end as example_dags/demo.json says. Every process is stopped on exit, Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_imkit.sandbox import ImkitSandbox
from tests.deployment.harness.chat import COMMAND_DAG, TARGET_DAG, chat_round, open_for_commands
from tests.deployment.harness.deployment import Deployment
from tests.deployment.harness.servers import wait_for

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "example_dags"
LOGICAL_DATE = "2026-01-02T06:00:00+00:00"
#: A DAG file with a syntax error (it names airflow and DAG, so Airflow's safe mode parses it).
BROKEN_DAG = "from airflow.sdk import DAG\n\nwith DAG('broken_dag'  # missing parenthesis\n"
#: The DAG with no IMKIT code: run once failing, once succeeding, for the deployment-wide alerts.
ALERTS_DAG = "example_imkit_deployment_alerts"


def components(sandbox: ImkitSandbox) -> dict[str, str]:
    """Message id -> the Airflow component that sent it (the provider's User-Agent says)."""
    found = {}
    for request in sandbox.requests():
        match = re.search(r"\(airflow ([^)]+)\)", request.get("user_agent") or "")
        if request.get("result_id") and match:
            found[request["result_id"]] = match.group(1)
    return found


def alert_report(deployment: Deployment, sandbox: ImkitSandbox, dag_id: str, run_id: str) -> list[str]:
    """For each alert about this DAG: the component that sent it and its delay after the failure."""
    failed = [
        ti for ti in deployment.task_instances(dag_id, run_id) if ti["state"] == "failed" and ti["end_date"]
    ]
    failed_at = min((datetime.fromisoformat(ti["end_date"]) for ti in failed), default=None)
    sent_by = components(sandbox)
    lines = []
    for room, messages in sorted(sandbox.all_received().items()):
        for message in messages:
            text = message["message"] if isinstance(message["message"], str) else ""
            text_lines = text.splitlines() or [""]
            if f"DAG: {dag_id}" not in text_lines and f"DAG {dag_id} " not in text_lines[0]:
                continue
            delay = ""
            if failed_at is not None:
                seconds = max(0.0, message["createdAtMS"] / 1000 - failed_at.timestamp())
                delay = f", {seconds:.1f} s after the task failed"
            who = sent_by.get(message["_id"], "?")
            lines.append(f"    alert in #{room} sent by the {who}{delay}: {text.splitlines()[0]}")
    return lines


def run(plan: dict[str, Any], serve: bool, transcript: Any) -> int:
    started = time.monotonic()
    # Deployment-wide alerts to #ops-alerts, unless the caller's AIRFLOW__IMKIT__* say otherwise.
    imkit_env = {"AIRFLOW__IMKIT__ALERTS_ROOM": "ops-alerts", "AIRFLOW__IMKIT__ALERTS_SENDER": "airflow-bot"}
    imkit_env.update({k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__IMKIT__")})
    with (
        ImkitSandbox(rooms=plan["rooms"], users=plan["users"]) as sandbox,
        Deployment(
            root=ROOT / ".artifacts" / "demo-celery",
            dag_sources=[DAGS],
            imkit_conn={"host": sandbox.url, "password": sandbox.api_key},
            extra_env=imkit_env,
        ) as deployment,
    ):
        print(
            f"IMKIT sandbox at {sandbox.url}; Postgres :{deployment.pg_port}, Redis :{deployment.redis_port}"
        )
        print(
            f"Airflow up in {deployment.timings['up']:.0f} s: api-server, scheduler, dag-processor,"
            " triggerer, celery worker; the connection imkit_default is stored in the metadata database"
        )
        for answer in plan.get("answers", []):
            sandbox.auto_reply(**answer)  # the approver answers each run's question in the room
        deployment.wait_for_dags([*plan["dags"], COMMAND_DAG, TARGET_DAG])
        open_for_commands(deployment)  # its asset's watcher starts in the triggerer
        runs = {
            dag_id: deployment.trigger(dag_id, LOGICAL_DATE, {"fail": True} if dag_id == ALERTS_DAG else None)
            for dag_id in plan["dags"]
        }
        second = {
            dag_id: deployment.trigger(dag_id, date) for dag_id, date in plan.get("second_runs", {}).items()
        }
        print(f"Triggered {len(runs)} DAGs through the REST API ({ALERTS_DAG} told to fail)...", flush=True)
        states = deployment.wait(runs, timeout=300)
        plan["dags"][ALERTS_DAG] = "failed"
        print(f"Triggering {ALERTS_DAG} again, to succeed; then dropping a broken DAG file in...", flush=True)
        recovery = deployment.trigger(ALERTS_DAG, "2026-01-03T06:00:00+00:00", {"fail": False})
        recovered = deployment.wait({ALERTS_DAG: recovery}, timeout=240)[ALERTS_DAG]
        (deployment.dags_folder / "broken_dag.py").write_text(BROKEN_DAG)
        with contextlib.suppress(TimeoutError):
            wait_for(
                lambda: any("broken_dag.py" in m["message"] for m in sandbox.received("ops-alerts")), "", 120
            )
        sandbox.flush_batches()
        all_ok = recovered == "success"
        print("Typing chat commands in #ops-commands through the inbox page (the last one while the "
              "triggerer is down)...", flush=True)  # fmt: skip
        commands = chat_round(deployment, sandbox, plan["commands"], restart_triggerer=True)
        expected_answers = [
            c["message"].startswith("rerun example_imkit_sales_daily") for c in plan["commands"]
        ]
        all_ok &= all(
            (c.run_state == "success") == started
            for c, started in zip(commands, [*expected_answers, True], strict=True)
        )
        for dag_id, run_id in second.items():
            state = deployment.wait({dag_id: run_id}, timeout=120)[dag_id]
            ok = state == plan["dags"][dag_id]
            all_ok &= ok
            print(
                f"{dag_id}, second run ({run_id}): {state}"
                + ("" if ok else f" (EXPECTED {plan['dags'][dag_id]})")
            )
        print()
        for dag_id, expected in plan["dags"].items():
            ok = states.get(dag_id) == expected
            all_ok &= ok
            verdict = "as expected" if ok else f"EXPECTED {expected}"
            print(f"{dag_id}: {states.get(dag_id)} ({verdict})")
            for line in alert_report(deployment, sandbox, dag_id, runs[dag_id]):
                print(line)
        print(
            f"{ALERTS_DAG}, second run: {recovered}" + (" (as expected)" if all_ok else " (EXPECTED success)")
        )
        print("Chat commands (the watcher reads #ops-commands every 5 s, in the triggerer):")
        for command in commands:
            print(f"  {command.line()}")
        sent_by = components(sandbox)
        for message in sandbox.received("ops-alerts"):
            if "broken_dag.py" in message["message"]:
                print(f"broken_dag.py dropped in: alert sent by the {sent_by.get(message['_id'], '?')}:"
                      f" {message['message'].splitlines()[0]}")  # fmt: skip
        print("\nWhat each room received:")
        for room, messages in sorted(sandbox.all_received().items()):
            print(f"\n# {room} ({len(messages)} message{'s' if len(messages) != 1 else ''})")
            for message in messages:
                print(transcript(message))
        memory = deployment.memory_mib()
        print(
            "\nMemory (RSS with child processes): " + ", ".join(f"{k} {v:.0f} MiB" for k, v in memory.items())
        )
        print(f"  in all {sum(memory.values()):.0f} MiB; logs: {deployment.logs.relative_to(ROOT)}")
        summary = "all DAGs ended as expected" if all_ok else "SOME DAGS DID NOT END AS EXPECTED"
        print(f"Done in {time.monotonic() - started:.0f} s: {summary}")
        if serve:
            print(
                f"\nAirflow UI: {deployment.api_url}/  (no login: simple auth manager, every user is admin)"
            )
            print(f"Inbox page: {sandbox.url}/\nServing until Ctrl-C ...", flush=True)
            try:
                while True:
                    time.sleep(1)
                    deployment.check_alive()
            except KeyboardInterrupt:
                pass
        print("Stopping every process...", flush=True)
    return 0 if all_ok else 1


def faults() -> int:
    """``scripts/demo.sh --celery --faults``: the fault drills, one row each; 1 on any
    duplicate or loss."""
    sys.path.insert(0, str(ROOT))
    from tests.deployment.drills import DRILL_ENV, drill_deployment, run_drills, table

    started = time.monotonic()
    print("Fault drills on a real deployment (Postgres, Redis, every component its own process).")
    print(
        "Set low so the drills do not wait minutes: "
        + ", ".join(f"{k}={v}" for k, v in DRILL_ENV.items() if "SCHEDULER" in k or "TRIGGERER" in k)
    )
    with drill_deployment(ROOT / ".artifacts" / "demo-faults") as (deployment, sandbox):
        print(f"Airflow up in {deployment.timings['up']:.0f} s; drilling...", flush=True)
        rows = run_drills(
            deployment,
            sandbox,
            report=lambda row: print(
                f"  {row.name}: {row.stored} stored of {row.expected}, {row.duplicates} duplicates,"
                f" {row.lost} lost ({row.seconds:.0f} s)",
                flush=True,
            ),
        )
        print()
        print(table(rows))
        print(f"\nLogs: {deployment.logs.relative_to(ROOT)}. Stopping every process...", flush=True)
    bad = [row.name for row in rows if not row.ok]
    print(
        f"Done in {time.monotonic() - started:.0f} s: "
        + ("NOT EXACTLY ONCE: " + "; ".join(bad) if bad else "0 duplicates, 0 lost")
    )
    return 1 if bad else 0


def with_signals_as_interrupts() -> None:
    """SIGINT (also when started in the background, where it is ignored by default) and
    SIGTERM end the demo like Ctrl-C: every process is stopped on the way out."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit("run through scripts/demo.sh --celery")
