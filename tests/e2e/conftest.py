"""One sandbox, one Airflow home and one run of every example DAG for the whole session.

Each DAG runs in real Airflow (``airflow dags test`` in a child process) against the
sandbox over loopback; the tests then read what the rooms received, the XComs in the
metadata database, and the task logs.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
from airflow_provider_imkit.testing import DagRunOutcome, airflow_env, migrate, run_dag
from tests.conftest import API_KEY, EXAMPLE_DAGS

LOGICAL_DATE = "2026-01-02T06:00:00+00:00"
OUTAGE_DATE = "2026-01-03T06:00:00+00:00"
AUTH_DATE = "2026-01-04T06:00:00+00:00"
WRONG_KEY = "wrong-key-Zm9vYmFyYmF6cXV4"


@dataclass
class ExampleRuns:
    sandbox: ImkitSandbox
    home: Path
    env: dict[str, str]
    plan: dict[str, Any]
    outcomes: dict[str, DagRunOutcome]
    #: example_imkit_failure_alert run again while IMKIT answers 503 to everything.
    outage: DagRunOutcome
    outage_requests: list[dict[str, Any]]
    #: example_imkit_send_message run with a wrong key given in the URI form.
    auth_failure: DagRunOutcome

    def xcoms(self, dag_id: str) -> dict[tuple[str, int], Any]:
        """``return_value`` XComs of the DAG's run, keyed by (task_id, map_index)."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute(
                "SELECT task_id, map_index, value FROM xcom WHERE dag_id = ? AND key = 'return_value'",
                (dag_id,),
            ).fetchall()
        # SQLite hands back JSON text (3.x), JSON bytes (2.x), or a bare number it parsed itself.
        return {
            (task_id, map_index): value if isinstance(value, int | float) else json.loads(value)
            for task_id, map_index, value in rows
        }


@pytest.fixture(scope="session")
def example_runs() -> Iterator[ExampleRuns]:
    plan = json.loads((EXAMPLE_DAGS / "demo.json").read_text())
    with (
        ImkitSandbox(api_key=API_KEY, rooms=plan["rooms"], users=plan["users"]) as sandbox,
        tempfile.TemporaryDirectory(prefix="imkit-e2e-airflow-") as home,
    ):
        for answer in plan.get("answers", []):
            sandbox.auto_reply(**answer)
        env = airflow_env(home, EXAMPLE_DAGS, {"AIRFLOW_CONN_IMKIT_DEFAULT": sandbox.connection_json()})
        migrate(env)
        # One run each (the approval DAG's second, rejected run is shown by the demo and
        # proven by the deployment test: each `airflow dags test` costs ~10 s per version).
        outcomes = {dag_id: run_dag(dag_id, env, LOGICAL_DATE) for dag_id in plan["dags"]}
        received = sandbox.all_received()

        # An IMKIT outage: every request answers 503; short backoff keeps the run quick.
        before = len(sandbox.requests())
        sandbox.inject("*", Fault.respond(503, {"RC": 503, "RM": "Service Unavailable"}), times=50)
        outage_conn = {
            "conn_type": "imkit",
            "host": sandbox.url,
            "password": API_KEY,
            "extra": {"max_attempts": 2, "backoff": 0.05},
        }
        outage_env = {**env, "AIRFLOW_CONN_IMKIT_DEFAULT": json.dumps(outage_conn)}
        outage = run_dag("example_imkit_failure_alert", outage_env, OUTAGE_DATE)
        outage_requests = sandbox.requests()[before:]
        assert sandbox.all_received() == received, "nothing may be stored during the outage"
        sandbox.clear_faults()

        # A wrong key, given in the URI form: the run fails on auth.
        host = sandbox.url.removeprefix("http://")
        auth_env = {**env, "AIRFLOW_CONN_IMKIT_DEFAULT": f"imkit://:{WRONG_KEY}@{host}/http"}
        auth_failure = run_dag("example_imkit_send_message", auth_env, AUTH_DATE)
        yield ExampleRuns(sandbox, Path(home), env, plan, outcomes, outage, outage_requests, auth_failure)
    sandbox.check()  # a bug inside the sandbox fails the session instead of passing for a fault
