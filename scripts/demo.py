"""The demo: run every example DAG in real Airflow against the IMKIT sandbox.

Starts the sandbox with the rooms and users of example_dags/demo.json, creates a throwaway
AIRFLOW_HOME, runs each example DAG with ``airflow dags test``, and prints what each room
received. Exits 1 when a DAG did not end as demo.json says it should.

    scripts/demo.sh            # run and exit
    scripts/demo.sh --serve    # ...then keep the sandbox's inbox page open until Ctrl-C
    scripts/demo.sh --celery   # the same DAGs on a real deployment (Postgres, Redis, Celery)
    scripts/demo.sh --celery --faults   # fault drills there: components killed, IMKIT late
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_imkit.sandbox import ImkitSandbox
from airflow_provider_imkit.testing import DagRunOutcome, airflow_env, migrate, run_dag

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "example_dags"
LOGICAL_DATE = "2026-01-02T06:00:00+00:00"


def load_plan() -> dict[str, Any]:
    plan: dict[str, Any] = json.loads((DAGS / "demo.json").read_text())
    return plan


def transcript_line(message: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(message["messageTimeMS"] / 1000, tz=UTC).strftime("%H:%M:%S")
    flags = [message["messageType"]]
    if message.get("push") is False:
        flags.append("no push")
    text = message["message"] if isinstance(message["message"], str) else json.dumps(message["message"])
    if message["messageType"] == "recall":
        text = "(this message was recalled)"
    mentions = " ".join(f"@{m}" for m in message.get("mentions") or [])
    first, *rest = text.splitlines() or [""]
    lines = [
        f"  [{when}] {message['sender']} ({', '.join(flags)}): {first}"
        + (f"  -> {mentions}" if mentions else "")
    ]
    lines += [f"             {line}" for line in rest]
    return "\n".join(lines)


def verdict(expected: str, outcome: DagRunOutcome) -> tuple[bool, str]:
    if expected == "success":
        return outcome.succeeded, "succeeded" if outcome.succeeded else "FAILED (expected success)"
    if expected == "failed":
        return (
            not outcome.succeeded,
            "failed as intended" if not outcome.succeeded else "SUCCEEDED (expected failure)",
        )
    return False, f"unknown expectation {expected!r} in demo.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", action="store_true", help="keep the sandbox running after the DAGs")
    parser.add_argument(
        "--celery",
        action="store_true",
        help="run on a real deployment: Postgres, Redis, every Airflow component, a Celery worker",
    )
    parser.add_argument(
        "--faults",
        action="store_true",
        help="with --celery: the fault drills instead (components killed mid-work, IMKIT storing late)",
    )
    parser.add_argument("--port", type=int, default=0, help="sandbox port (default: a free one)")
    parser.add_argument("--logs", default=str(ROOT / ".artifacts" / "demo"), help="where the DAG logs go")
    args = parser.parse_args(argv)

    plan = load_plan()
    if args.faults and not args.celery:
        parser.error("--faults goes with --celery (the drills need the real deployment)")
    if args.celery:
        from demo_celery import faults, run, with_signals_as_interrupts

        with_signals_as_interrupts()
        try:
            return faults() if args.faults else run(plan, args.serve, transcript_line)
        except KeyboardInterrupt:
            print("Interrupted: every process was stopped.")
            return 130
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    all_ok = True
    with (
        ImkitSandbox(port=args.port, rooms=plan["rooms"], users=plan["users"]) as sandbox,
        tempfile.TemporaryDirectory(prefix="imkit-demo-airflow-") as home,
    ):
        print(f"IMKIT sandbox at {sandbox.url} (rooms: {', '.join(plan['rooms'])})")
        for answer in plan.get("answers", []):
            sandbox.auto_reply(**answer)  # a scripted approver, answering one run's question
        env = airflow_env(home, DAGS, {"AIRFLOW_CONN_IMKIT_DEFAULT": sandbox.connection_json()})
        print("Preparing a throwaway Airflow home (airflow db migrate)...", flush=True)
        migrate(env)
        second = [
            (dag_id, plan["dags"][dag_id], date) for dag_id, date in plan.get("second_runs", {}).items()
        ]
        for dag_id, expected, date in [(d, e, LOGICAL_DATE) for d, e in plan["dags"].items()] + second:
            print(f"Running {dag_id} {date[:10]} with `airflow dags test` ...", end=" ", flush=True)
            outcome = run_dag(dag_id, env, date)
            log_file = logs / f"{dag_id}{'' if date == LOGICAL_DATE else '-' + date[:10]}.log"
            log_file.write_text(outcome.output)
            ok, text = verdict(expected, outcome)
            all_ok &= ok
            shown = log_file.relative_to(ROOT) if log_file.is_relative_to(ROOT) else log_file
            print(f"{text} in {outcome.seconds:.1f} s (log: {shown})")
            if sandbox.api_key in outcome.output:
                all_ok = False
                print("  !! the API key appears in this DAG's log")

        event_dags = ", ".join(plan.get("event_dags", {}))
        if event_dags:
            print(f"Not run here: {event_dags} (started by messages typed in a room; --celery shows them)")
        print("\nWhat each room received:")
        for room, messages in sorted(sandbox.all_received().items()):
            print(f"\n# {room} ({len(messages)} message{'s' if len(messages) != 1 else ''})")
            for message in messages:
                print(transcript_line(message))
        print(f"\nInbox page: {sandbox.url}/" + ("" if args.serve else "  (use --serve to keep it open)"))
        summary = "all DAGs ended as expected" if all_ok else "SOME DAGS DID NOT END AS EXPECTED"
        print(f"Done in {time.monotonic() - started:.0f} s: {summary}")
        if args.serve:
            print("Serving until Ctrl-C ...", flush=True)
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
