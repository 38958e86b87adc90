"""ImkitNotifier in real Airflow: task- and DAG-level alerts, a success summary, an outage."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.version_compat import get_base_airflow_version_tuple

from tests.conftest import API_KEY
from tests.e2e.conftest import ExampleRuns

# With pytest-xdist: every test on the session's example runs in one worker (run once).
pytestmark = pytest.mark.xdist_group("example_runs")

#: Airflow 3.0 to 3.2: `airflow dags test` runs task failure callbacks without ``exception``.
DAGS_TEST_PASSES_NO_EXCEPTION = (3, 0, 0) <= get_base_airflow_version_tuple() < (3, 3, 0)
AIRFLOW_3_0 = get_base_airflow_version_tuple()[:2] == (3, 0)


def test_failing_task_sends_exactly_one_task_alert(example_runs: ExampleRuns) -> None:
    alerts = example_runs.sandbox.received("data-alerts")
    task_alerts = [m for m in alerts if m["message"].startswith("❌ Airflow task ")]
    assert len(task_alerts) == 1
    (alert,) = task_alerts
    lines = alert["message"].splitlines()
    assert lines[0] == "❌ Airflow task example_imkit_failure_alert.load_warehouse failed"
    assert "DAG: example_imkit_failure_alert" in lines
    assert "Task: load_warehouse" in lines
    assert "Logical date: 2026-01-02 06:00:00+00:00" in lines
    assert "Try: 1 of 1" in lines
    log_urls = [line.removeprefix("Log: ") for line in lines if line.startswith("Log: ")]
    # Airflow 3.0's task instance has no log URL in `airflow dags test`; every other version does.
    assert [url.startswith("http") for url in log_urls] == ([] if AIRFLOW_3_0 else [True])
    if DAGS_TEST_PASSES_NO_EXCEPTION:
        # `airflow dags test` on 3.0-3.2 gives task failure callbacks no exception (workers do).
        where = f": {log_urls[0]}" if log_urls else ""
        assert f"Error: see the task log{where}" in lines
    else:
        error = "RuntimeError: warehouse rejected 42 rows: <constraint violated> on table sales"
        assert f"Error: {error}" in lines
    assert alert["mentions"] == ["oncall-dana"]
    assert alert["sender"] == "airflow-bot"


def test_dag_level_failure_alert_arrives(example_runs: ExampleRuns) -> None:
    alerts = example_runs.sandbox.received("data-alerts")
    dag_alerts = [m for m in alerts if m["message"].startswith("❌ Airflow DAG ")]
    assert len(dag_alerts) == 1
    lines = dag_alerts[0]["message"].splitlines()
    assert lines[0] == "❌ Airflow DAG example_imkit_failure_alert run failed"
    assert "DAG: example_imkit_failure_alert" in lines
    assert len(alerts) == 2


def test_success_summary_from_dag_callback(example_runs: ExampleRuns) -> None:
    summaries = [
        m
        for m in example_runs.sandbox.received("data-pipeline")
        if "example_imkit_success_summary" in m["message"]
    ]
    assert [m["message"] for m in summaries] == [
        "✅ Daily pipeline example_imkit_success_summary done for 2026-01-02: all tasks succeeded."
    ]
    assert summaries[0]["mentions"] == ["alice"] and summaries[0]["push"] is False


def test_outage_leaves_the_task_failure_intact(example_runs: ExampleRuns) -> None:
    outage = example_runs.outage
    assert not outage.succeeded
    # The task's own failure is still what the log reports...
    assert "RuntimeError: warehouse rejected 42 rows" in outage.output
    # ...and each alert that could not be sent logged one clear error.
    errors = [
        line
        for line in outage.output.splitlines()
        if "IMKIT notification to room 'data-alerts' was not sent" in line
    ]
    assert len(errors) == 2, "\n".join(errors)
    assert all("HTTP 503" in line for line in errors)
    # Two callbacks, two attempts each (max_attempts=2), nothing stored.
    assert [r["status"] for r in example_runs.outage_requests] == [503] * 4
    assert API_KEY not in outage.output
