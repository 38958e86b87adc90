"""Deployment-wide alerts in real Airflow (``dag.test()``): grouping, repeats, recovery, routing.

No DAG has a notifier: only ``AIRFLOW__IMKIT__*`` settings. The plugin is loaded through
its entry point, its listener hooks run in the same process as the DAG runs, and its
background sender posts to the sandbox (flushed when the process exits).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_imkit.sandbox import ImkitSandbox
from airflow_provider_imkit.testing import airflow_env, migrate
from airflow_provider_imkit.testing.dagrun import plain_text
from tests.conftest import API_KEY, ROOT
from tests.e2e.test_failure_alerts import AIRFLOW_3_0

# With pytest-xdist: the module's DAG runs happen once, in one worker.
pytestmark = pytest.mark.xdist_group("alerts")

DAGS = Path(__file__).parent / "alerts_dags"
FAIL, PASS = '={"fail": true}', '={"fail": false}'


def run_dags(env: dict[str, str], *specs: str, module: str = "tests.e2e.run_dags") -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, *specs],
        env={**env, "PYTHONUNBUFFERED": "1"}, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
    return plain_text(done.stdout)


@pytest.fixture(scope="module")
def alerts() -> Iterator[tuple[ImkitSandbox, str]]:
    with (
        ImkitSandbox(
            api_key=API_KEY, rooms=["ops-alerts", "finance-alerts"], users=["airflow", "oncall"]
        ) as sandbox,
        tempfile.TemporaryDirectory(prefix="imkit-e2e-alerts-") as home,
    ):
        env = airflow_env(
            home,
            DAGS,
            {
                "AIRFLOW_CONN_IMKIT_DEFAULT": sandbox.connection_json(),
                "AIRFLOW__IMKIT__ALERTS_ROOM": "ops-alerts",
                "AIRFLOW__IMKIT__ALERTS_MENTIONS": "oncall",
                "AIRFLOW__IMKIT__ALERTS_ROUTES": json.dumps({"tag:finance": "finance-alerts"}),
                "AIRFLOW__API__BASE_URL": "http://airflow.example.com",
            },
        )
        migrate(env)
        # fail, fail (within the repeat interval: quiet), succeed (recovered), fail (full again)
        output = run_dags(
            env, "alerts_etl" + FAIL, "alerts_etl" + FAIL, "alerts_etl" + PASS, "alerts_finance"
        )
        before = sandbox.all_received()
        # Airflow repeating itself: every run handed to the listener twice more, then a sweep.
        replay = run_dags(env, module="tests.e2e.alerts_replay")
        assert "@@REPLAYED 4" in replay, replay[-3000:]
        assert sandbox.all_received() == before, "a repeated listener call or the sweep posted again"
        yield sandbox, output


def test_one_grouped_alert_per_failed_run_then_quiet_then_recovered(alerts: tuple[ImkitSandbox, str]) -> None:
    sandbox, output = alerts
    messages = sandbox.received("ops-alerts")
    assert API_KEY not in output
    assert len(messages) == 2, [m["message"] for m in messages]
    failed, recovered = (m["message"] for m in messages)
    lines = failed.splitlines()
    assert lines[0] == "❌ Airflow DAG alerts_etl run failed: 4 tasks failed"
    assert "Failed: load[0], load[1], load[2], load[3]" in lines
    if AIRFLOW_3_0:  # `dag.test()` on 3.0 gives listeners no error (3.1+ and real workers do)
        assert "First error: see the task log" in lines
    else:
        assert any(
            line.startswith("First error: RuntimeError: partition ") and "rejected" in line for line in lines
        )
    assert any(line.startswith("Link: http://airflow.example.com/dags/alerts_etl/runs/") for line in lines)
    assert recovered.startswith("✅ Airflow DAG alerts_etl recovered after 2 failed runs, down for ")
    assert all(m["sender"] == "airflow" and m["mentions"] == ["oncall"] for m in messages)


def test_routes_send_tagged_dags_to_their_room(alerts: tuple[ImkitSandbox, str]) -> None:
    sandbox, _ = alerts
    (message,) = sandbox.received("finance-alerts")
    assert message["message"].startswith("❌ Airflow DAG alerts_finance run failed: 1 task failed")
    expected = "see the task log" if AIRFLOW_3_0 else "RuntimeError: ledger out of balance"
    assert f"First error: {expected}" in message["message"]


def test_repeats_post_a_short_still_failing_notice(tmp_path: Path) -> None:
    """With alerts_repeat_interval=0 each further failure posts one short notice, never the full text."""
    with ImkitSandbox(api_key=API_KEY, rooms=["ops-alerts"], users=["airflow"]) as sandbox:
        env = airflow_env(
            tmp_path,
            DAGS,
            {
                "AIRFLOW_CONN_IMKIT_DEFAULT": sandbox.connection_json(),
                "AIRFLOW__IMKIT__ALERTS_ROOM": "ops-alerts",
                "AIRFLOW__IMKIT__ALERTS_REPEAT_INTERVAL": "0",
                "AIRFLOW__IMKIT__ALERTS_DAG_IDS": "alerts_e*",
            },
        )
        migrate(env)
        run_dags(env, "alerts_etl" + FAIL, "alerts_etl" + FAIL, "alerts_etl" + FAIL, "alerts_finance")
        texts = [m["message"].splitlines()[0] for m in sandbox.received("ops-alerts")]
    assert texts[0] == "❌ Airflow DAG alerts_etl run failed: 4 tasks failed"
    assert texts[1].startswith("🔁 Airflow DAG alerts_etl still failing: 2 runs in a row since ")
    assert texts[2].startswith("🔁 Airflow DAG alerts_etl still failing: 3 runs in a row since ")
    assert len(texts) == 3, "alerts_finance is not in alerts_dag_ids"
