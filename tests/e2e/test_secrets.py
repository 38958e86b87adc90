"""The API key never leaves the connection: not in task logs, exceptions, XCom, rendered
template fields, or anywhere in Airflow's metadata database."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY
from tests.e2e.conftest import WRONG_KEY, ExampleRuns

# With pytest-xdist: every test on the session's example runs in one worker (run once).
pytestmark = pytest.mark.xdist_group("example_runs")


def test_auth_failure_from_uri_connection_fails_fast_without_the_key(example_runs: ExampleRuns) -> None:
    run = example_runs.auth_failure
    assert not run.succeeded
    assert "IMKIT POST /messages failed: HTTP 401 INVALID_API_KEY" in run.output
    assert WRONG_KEY not in run.output
    # A permanent error: the task failed without using Airflow retries, and nothing was sent.
    assert "attempt 1 failed" not in run.output


def test_no_key_in_any_task_log(example_runs: ExampleRuns) -> None:
    runs = [*example_runs.outcomes.values(), example_runs.outage, example_runs.auth_failure]
    for run in runs:
        assert API_KEY not in run.output, run.dag_id
        assert WRONG_KEY not in run.output, run.dag_id


def test_no_key_in_the_metadata_database(example_runs: ExampleRuns) -> None:
    """XComs, rendered template fields, task instances, logs kept in the DB: all of it."""
    for path in example_runs.home.glob("airflow.db*"):
        data = path.read_bytes()
        assert API_KEY.encode() not in data, path
        assert WRONG_KEY.encode() not in data, path
    xcoms = example_runs.xcoms("example_imkit_send_message")
    assert xcoms, "the runs did write XComs"


def test_no_key_in_a_task_log_at_debug_level(example_runs: ExampleRuns) -> None:
    """Every log line at DEBUG, the task log read back: the key appears nowhere.

    On Airflow 3 the task SDK sends the key to ``dags test``'s in-process supervisor, which logs
    the message at DEBUG; the provider's log_masking keeps the value out of that line."""
    from airflow_provider_imkit.testing import run_dag

    env = {**example_runs.env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG"}
    outcome = run_dag("example_imkit_send_message", env, "2026-01-05T06:00:00+00:00")
    assert outcome.succeeded, outcome.output[-3000:]
    assert "debug" in outcome.output.lower() and "IMKIT message" in outcome.output
    assert API_KEY not in outcome.output
    for log in example_runs.home.glob("logs/**/*"):
        if log.is_file():
            assert API_KEY not in log.read_text(errors="replace"), log
