"""Fault drills on the real deployment: components killed mid-work, IMKIT storing late.

Each drill triggers a DAG of drill_dags/drill_cases.py, does its damage, lets the deployment
recover, and counts what the rooms hold: one row each (expected, stored, duplicates, lost,
seconds). Used by tests/deployment/test_drills.py and ``scripts/demo.sh --celery --faults``.

Airflow notices a dead worker's task only after ``[scheduler] task_instance_heartbeat_timeout``
(300 s by default) and a restarted triggerer takes its triggers back after
``[triggerer] triggerer_health_check_threshold`` (30 s by default): the drills' deployment
sets them to 20 s and 10 s (:data:`DRILL_ENV`).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
from tests.deployment.harness.deployment import Deployment
from tests.deployment.harness.servers import wait_for

HERE = Path(__file__).parent
ROOMS = ["drill-worker", "drill-approval", "drill-alerts", "drill-redis", "drill-late"]
USERS = ["drill-bot", "alice"]
API_KEY = "drill-key-Zm9vYmFyYmF6cXV4"
#: How often the scheduler-kill drill is repeated.
SCHEDULER_KILLS = 5
#: Settings of the drills' deployment (see the module doc).
DRILL_ENV = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "30",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
    "AIRFLOW__CORE__PARALLELISM": "8",
    "AIRFLOW__IMKIT__ALERTS_ROOM": "drill-alerts",
    "AIRFLOW__IMKIT__ALERTS_SENDER": "drill-bot",
    "AIRFLOW__IMKIT__ALERTS_DAG_IDS": "drill_fail",
    "AIRFLOW__IMKIT__ALERTS_EVENTS": "dag_run_failed",
    # Every failed run of drill_fail posts (the first in full, then "still failing"): the drills
    # count one alert per run.
    "AIRFLOW__IMKIT__ALERTS_REPEAT_INTERVAL": "0",
    # A restarted scheduler's sweep leaves a run that ended under 10 s ago to its listener:
    # sweep often, so the drill sees the next sweep soon.
    "AIRFLOW__IMKIT__ALERTS_SWEEP_INTERVAL": "5",
}


@dataclass
class Drill:
    name: str
    expected: int
    stored: int
    duplicates: int
    lost: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and self.lost == 0


@contextlib.contextmanager
def drill_deployment(root: Path) -> Iterator[tuple[Deployment, ImkitSandbox]]:
    """The sandbox and a deployment for the drills (own rooms, connections and settings)."""
    with (
        ImkitSandbox(api_key=API_KEY, rooms=ROOMS, users=USERS) as sandbox,
        Deployment(
            root=root,
            dag_sources=[HERE / "drill_dags"],
            imkit_conn={"host": sandbox.url, "password": API_KEY},
            connections={
                "imkit_slow": {"host": sandbox.url, "password": API_KEY, "extra": {"read_timeout": 1}}
            },
            extra_env=DRILL_ENV,
            worker_concurrency=4,
        ) as deployment,
    ):
        deployment.wait_for_dags(
            ["drill_worker_kill", "drill_approval", "drill_fail", "drill_redis", "drill_late_store"]
        )
        yield deployment, sandbox
    sandbox.check()


def count(sandbox: ImkitSandbox, room: str, expected: list[str], started: float, name: str) -> Drill:
    """One row: how many of the ``expected`` texts the room holds, doubled, missing."""
    stored = Counter(m["message"] for m in sandbox.received(room) if m["sender"] == "drill-bot")
    return Drill(
        name=name,
        expected=len(expected),
        stored=sum(stored.values()),
        duplicates=sum(max(0, stored[text] - 1) for text in set(expected))
        + sum(n for text, n in stored.items() if text not in expected),
        lost=sum(1 for text in set(expected) if stored[text] == 0),
        seconds=round(time.monotonic() - started, 1),
    )


def posts(sandbox: ImkitSandbox) -> int:
    return sandbox.request_counts().get("POST /messages", 0)


def until(check: Callable[[], object], what: str, timeout: float = 240) -> None:
    wait_for(check, what, timeout)


def worker_killed_mid_send(deployment: Deployment, sandbox: ImkitSandbox) -> Drill:
    started, before = time.monotonic(), posts(sandbox)
    sandbox.inject("/messages", Fault("hold", delay=60))
    run = deployment.trigger("drill_worker_kill", "2026-01-02T00:00:00+00:00")
    until(lambda: posts(sandbox) > before, "the held send")
    deployment.kill("celery-worker")
    time.sleep(0.5)
    sandbox.release()  # IMKIT goes on and stores what the dead worker sent
    deployment.restart("celery-worker")
    deployment.wait({"drill_worker_kill": run}, timeout=240)
    text = "drill: the worker was killed while this was being sent"
    return count(
        sandbox, "drill-worker", [text], started, "Celery worker SIGKILLed while a send is in flight"
    )


def triggerer_restarted_during_wait(deployment: Deployment, sandbox: ImkitSandbox) -> Drill:
    started = time.monotonic()
    run = deployment.trigger("drill_approval", "2026-01-02T00:00:00+00:00")
    until(lambda: sandbox.received("drill-approval"), "the approval question")
    until(
        lambda: any(t["state"] == "deferred" for t in deployment.task_instances("drill_approval", run)),
        "the gate's deferral",
    )
    deployment.kill("triggerer")
    sandbox.post_as("alice", "drill-approval", "Approve")  # answered while no triggerer runs
    deployment.restart("triggerer")
    deployment.wait({"drill_approval": run}, timeout=240)
    said = [m["message"] for m in sandbox.received("drill-approval") if m["sender"] == "drill-bot"]
    question = next((t for t in said if t.startswith("Drill: go ahead")), "(no question)")
    ack = next((t for t in said if t.startswith('Approved by alice ("Approve")')), "(no acknowledgement)")
    return count(
        sandbox,
        "drill-approval",
        [question, ack, "drill: going ahead"],
        started,
        "triggerer killed and restarted during an approval wait",
    )


def scheduler_killed_after_failure(deployment: Deployment, sandbox: ImkitSandbox) -> Drill:
    """Killed within a second of a run's failure, five times: some with the alert's send in
    flight (held by IMKIT, stored after the kill), some with it still queued."""
    started = time.monotonic()
    expected = []
    for index in range(SCHEDULER_KILLS):
        held = index % 2 == 0
        before = posts(sandbox)
        if held:
            sandbox.inject("/messages", Fault("hold", delay=60))
        run = deployment.trigger("drill_fail", f"2026-02-0{index + 1}T00:00:00+00:00")
        expected.append(run)
        until(lambda: deployment.run("drill_fail", run)["state"] == "failed", "the failed run", 120)  # noqa: B023
        if held:
            until(lambda: posts(sandbox) > before, "the alert's send", 30)  # noqa: B023
        deployment.kill("scheduler")
        if held:
            time.sleep(0.5)
            sandbox.release()
        deployment.restart("scheduler")
        until(lambda: alerted(sandbox, run), f"the alert of {run}", 120)  # noqa: B023
    time.sleep(15)  # a late duplicate would show by now (the settle window is 10 s)
    return alert_row(
        sandbox,
        expected,
        started,
        f"scheduler killed within a second of a run's failure ({SCHEDULER_KILLS}x)",
    )


def two_schedulers(deployment: Deployment, sandbox: ImkitSandbox) -> Drill:
    started = time.monotonic()
    deployment.add("scheduler-2", like="scheduler")
    try:
        runs = [
            deployment.trigger("drill_fail", f"2026-03-0{index + 1}T00:00:00+00:00") for index in range(3)
        ]
        deployment.wait(dict.fromkeys(["drill_fail"], runs[-1]), timeout=180)
        for run in runs:
            until(lambda: alerted(sandbox, run), f"the alert of {run}", 120)  # noqa: B023
        time.sleep(15)
    finally:
        deployment.kill("scheduler-2")
    return alert_row(sandbox, runs, started, "two schedulers at once (3 failed runs)")


def about(text: str, run_id: str) -> bool:
    """Whether an alert is about this run: its ``Run:`` line, or its link ("still failing")."""
    return f"Run: {run_id}" in text or f"/runs/{quote(run_id, safe='')}" in text


def alerted(sandbox: ImkitSandbox, run_id: str) -> bool:
    return any(about(m["message"], run_id) for m in sandbox.received("drill-alerts"))


def alert_row(sandbox: ImkitSandbox, runs: list[str], started: float, name: str) -> Drill:
    texts = [m["message"] for m in sandbox.received("drill-alerts")]
    per_run = {run: sum(1 for t in texts if about(t, run)) for run in runs}
    return Drill(
        name=name,
        expected=len(runs),
        stored=sum(per_run.values()),
        duplicates=sum(max(0, n - 1) for n in per_run.values()),
        lost=sum(1 for n in per_run.values() if n == 0),
        seconds=round(time.monotonic() - started, 1),
    )


def redis_restarted(deployment: Deployment, sandbox: ImkitSandbox) -> Drill:
    started = time.monotonic()
    run = deployment.trigger("drill_redis", "2026-01-02T00:00:00+00:00")
    until(
        lambda: any(t["state"] == "running" for t in deployment.task_instances("drill_redis", run)),
        "a running task",
    )
    deployment.restart_redis()
    deployment.wait({"drill_redis": run}, timeout=300)
    expected = [f"drill: through a Redis restart {index}" for index in range(6)]
    return count(sandbox, "drill-redis", expected, started, "Redis restarted mid-run")


def late_store_under_mapped_sends(deployment: Deployment, sandbox: ImkitSandbox) -> Drill:
    started = time.monotonic()
    rng = random.Random(40)
    for _ in range(40):
        sandbox.inject("/messages", Fault("delay", delay=rng.uniform(1.5, 4.0)))
    run = deployment.trigger("drill_late_store", "2026-01-02T00:00:00+00:00")
    deployment.wait({"drill_late_store": run}, timeout=600)
    sandbox.clear_faults()
    time.sleep(5)  # every late store has landed
    expected = [f"drill: stored late {index}" for index in range(40)]
    return count(
        sandbox, "drill-late", expected, started, "IMKIT stores after the 1 s read timeout (40 mapped sends)"
    )


DRILLS = (
    worker_killed_mid_send,
    triggerer_restarted_during_wait,
    scheduler_killed_after_failure,
    two_schedulers,
    redis_restarted,
    late_store_under_mapped_sends,
)


def run_drills(
    deployment: Deployment, sandbox: ImkitSandbox, report: Callable[[Drill], None] = print
) -> list[Drill]:
    rows = []
    for drill in DRILLS:
        row = drill(deployment, sandbox)
        report(row)
        rows.append(row)
    return rows


def table(rows: list[Drill]) -> str:
    lines = ["| drill | expected | stored | duplicates | lost | seconds |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r.name} | {r.expected} | {r.stored} | {r.duplicates} | {r.lost} | {r.seconds:.0f} |"
        for r in rows
    ]
    return "\n".join(lines)
