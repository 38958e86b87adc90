"""The alerts plugin's parts: configuration, history decisions, the bounded sender, and hooks
that never break the component that calls them."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_imkit.plugins import history
from airflow_provider_imkit.plugins.alerts import Alerts
from airflow_provider_imkit.plugins.config import AlertsConfigError, alerts_config
from airflow_provider_imkit.plugins.sender import BackgroundSender

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def config_of(**options: str) -> Any:
    return alerts_config(options.get)


def test_empty_room_turns_the_plugin_off() -> None:
    assert config_of() is None
    assert config_of(alerts_room="  ") is None


def test_every_key_is_read() -> None:
    config = config_of(
        alerts_room="ops",
        alerts_sender="bot",
        alerts_conn_id="imkit_ops",
        alerts_mentions="alice;bob",
        alerts_events="dag_run_failed, task_retry",
        alerts_dag_ids="etl_*,billing",
        alerts_tags="prod",
        alerts_routes='{"tag:finance": "finance-alerts", "dag:etl_*": "etl-room"}',
        alerts_repeat_interval="600",
    )
    assert (config.room, config.sender, config.conn_id, config.mentions) == (
        "ops",
        "bot",
        "imkit_ops",
        ("alice", "bob"),
    )
    assert config.events == {"dag_run_failed", "task_retry"}
    assert config.repeat_interval == timedelta(minutes=10)
    assert config.wants("dag_run_failed", "etl_daily", ["prod"])
    assert not config.wants("dag_run_failed", "etl_daily", ["dev"])
    assert not config.wants("dag_run_failed", "reports", ["prod"])
    assert not config.wants("import_error", "etl_daily", ["prod"])
    assert config.room_for("etl_daily", ["finance"]) == "finance-alerts"  # first match wins
    assert config.room_for("etl_daily", []) == "etl-room"
    assert config.room_for("other", []) == "ops"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"alerts_events": "dag_run_failed,dag_failed"}, "alerts_events"),
        ({"alerts_routes": "{not json"}, "alerts_routes"),
        ({"alerts_routes": '{"tag:x": ""}'}, "alerts_routes"),
        ({"alerts_routes": '{"team:x": "room"}'}, "alerts_routes"),
        ({"alerts_routes": '["tag:x"]'}, "alerts_routes"),
        ({"alerts_repeat_interval": "an hour"}, "alerts_repeat_interval"),
        ({"alerts_queue_size": "0"}, "alerts_queue_size"),
        ({"alerts_mentions": "alice bob"}, "alerts_mentions[0]"),
        ({"alerts_sender": "bo\x00t"}, "alerts_sender"),
    ],
)
def test_bad_values_name_the_key(options: dict[str, str], key: str) -> None:
    with pytest.raises(AlertsConfigError) as info:
        config_of(alerts_room="ops", **options)
    assert info.value.key == key and f"[imkit] {key}:" in str(info.value) and "OFF" in str(info.value)


def test_a_bad_value_is_one_error_line_and_the_plugin_stays_off(caplog: pytest.LogCaptureFixture) -> None:
    alerts = Alerts({"alerts_room": "ops", "alerts_events": "bogus"}.get)
    with caplog.at_level("ERROR"):
        for _ in range(3):
            alerts.on_dag_run_failed(SimpleNamespace(dag_id="d", run_id="r"), "task_failure")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "alerts_events" in errors[0].getMessage()
    assert alerts.sender.dropped == 0 and alerts.sender._thread is None


def test_hooks_never_raise_into_airflow(caplog: pytest.LogCaptureFixture) -> None:
    alerts = Alerts({"alerts_room": "ops", "alerts_events": "dag_run_failed,task_failed,import_error"}.get)
    broken = object()  # no dag_id, no run_id, nothing
    alerts.on_dag_run_failed(broken, "x")
    alerts.on_task_instance_failed(None, broken, RuntimeError("x"))
    alerts.on_new_dag_import_error(None, None)  # type: ignore[arg-type]
    alerts.before_stopping(None)
    assert "hook failed (Airflow carries on)" in caplog.text or "failed" in caplog.text


def ends(*minutes: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in minutes]


@pytest.mark.parametrize(
    ("notices", "now", "expected"),
    [
        ([], 0, "full"),  # no earlier failure of the streak was announced (or the plugin was off)
        (ends(0), 5, None),  # 5 min after the first failure's alert, interval 60 min
        (ends(0), 60, "repeat"),
        (ends(0, 60), 90, None),  # a repeat went out at 60
        (ends(0, 60), 120, "repeat"),
    ],
)
def test_repeats_follow_the_notices_in_the_ledger(
    notices: list[datetime], now: int, expected: str | None
) -> None:
    assert history.failure_notice(notices, T0 + timedelta(minutes=now), timedelta(hours=1)) == expected


@pytest.mark.parametrize(
    ("reason", "count", "headline"),
    [
        ("task_failure", 2, "❌ Airflow DAG etl run failed: 2 tasks failed"),
        (None, 1, "❌ Airflow DAG etl run failed: 1 task failed"),
        ("timed_out", 0, "❌ Airflow DAG etl run timed out (dagrun_timeout)"),
        ("timed_out", 1, "❌ Airflow DAG etl run timed out (dagrun_timeout): 1 task failed"),
        ("all_tasks_deadlocked", 0, "❌ Airflow DAG etl run failed: its tasks are deadlocked"),
        (
            "Dag Run's state was manually set to `failed`.",
            0,
            "❌ Airflow DAG etl run was marked failed by hand",
        ),
        ("something_new", 0, "❌ Airflow DAG etl run failed (something_new)"),
    ],
)
def test_the_headline_gives_airflow_s_reason(reason: str | None, count: int, headline: str) -> None:
    assert history.failed_run_headline("etl", count, reason) == headline


def test_streak_and_texts() -> None:
    runs = [
        history.EarlierRun("failed", T0 + timedelta(minutes=2), "r2"),
        history.EarlierRun("failed", T0, "r1"),
        history.EarlierRun("success", T0 - timedelta(days=1), "r0"),
    ]
    assert [run.run_id for run in history.failure_streak(runs)] == ["r1", "r2"]
    assert history.failure_streak([history.EarlierRun("success", T0), *runs]) == []
    text = history.failed_run_text(
        dag_id="etl", run_id="r1", logical_date=None, failed_tasks=[f"load[{i}]" for i in range(40)],
        error="RuntimeError: boom", link="http://x/dags/etl/runs/r1",
    )  # fmt: skip
    assert text.splitlines()[0] == "❌ Airflow DAG etl run failed: 40 tasks failed"
    assert "Failed: load[0], load[1], load[2], load[3], load[4] and 35 more" in text
    # No error line was left (the listener got no exception): the alert says where to look.
    unknown = history.failed_run_text(
        dag_id="etl", run_id="r1", logical_date=None, failed_tasks=["load"], error=None, link=None
    )
    assert "First error: see the task log" in unknown.splitlines()
    assert (
        history.recovered_text("etl", 3, 7500, None)
        == "✅ Airflow DAG etl recovered after 3 failed runs, down for 2 h 05 min"
    )
    assert history.duration_text(250) == "4 min 10 s"


def test_sender_is_bounded_drops_and_counts_and_flushes(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    done: list[int] = []
    sender = BackgroundSender(size=2, clock=lambda: 0.0)

    def block() -> None:
        gate.wait()

    sender.submit(block)  # taken by the thread at once
    time.sleep(0.05)
    assert sender.submit(lambda: done.append(1)) and sender.submit(lambda: done.append(2))
    with caplog.at_level("WARNING"):
        assert not sender.submit(lambda: done.append(3))
        assert not sender.submit(lambda: done.append(4))
    assert sender.dropped == 2
    assert caplog.text.count("queue full") == 1, "logged once per minute"
    assert not sender.flush(0.05)
    gate.set()
    assert sender.flush(5)
    assert done == [1, 2]
    sender.stop(1)


def test_sender_survives_failing_jobs() -> None:
    sender = BackgroundSender()
    results: list[str] = []

    def boom() -> None:
        raise RuntimeError("IMKIT down")

    sender.submit(boom)
    sender.submit(lambda: results.append("next"))
    assert sender.flush(5) and results == ["next"] and sender.failed == 1
    sender.stop(1)


def test_the_sweep_runs_in_schedulers_once_they_read_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_imkit.plugins import metadata

    assert metadata._is_scheduler(["/venv/bin/airflow", "scheduler"])
    assert not metadata._is_scheduler(["/venv/bin/airflow", "triggerer"])
    assert not metadata._is_scheduler(["python", "-m", "pytest"])
    assert metadata._is_scheduler(["/venv/lib/python3.11/site-packages/airflow/__main__.py", "scheduler"])
    if metadata.AIRFLOW_V_3_0_PLUS:
        # on_starting comes before the scheduler marks itself a server (connections from the DB).
        monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT", raising=False)
        assert not metadata._reads_connections()
        monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    assert metadata._reads_connections()


def test_a_pid_is_judged_only_in_its_own_host_and_pid_namespace() -> None:
    import os

    from airflow_provider_imkit.plugins import ledger

    me = ledger.this_owner()
    assert ledger.owner_alive(me) is True
    host, namespace, _ = me.split(":")
    assert ledger.owner_alive(f"{host}:{namespace}:999999999") is False
    assert ledger.owner_alive(f"{host}:another-namespace:{os.getpid()}") is None  # a container's
    assert ledger.owner_alive(f"another-host:{namespace}:{os.getpid()}") is None
