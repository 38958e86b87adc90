"""ImkitNotifier: default messages from full and reduced contexts, templates, async, outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
import responses
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_imkit.notifications.default_message import default_message, event_of
from airflow_provider_imkit.notifications.imkit import ImkitNotifier, send_imkit_notification
from tests.conftest import API_KEY, FakeTime

URL = "https://app.imkit.io/messages"
RESULT = {"_id": "b" * 24, "room": "alerts", "message": "x", "messageType": "text", "sender": "bot"}
LOG_URL = "http://airflow.example.com/dags/etl/runs/r1/tasks/load?try_number=2"


def ti(**overrides: Any) -> SimpleNamespace:
    fields = {
        "dag_id": "etl",
        "task_id": "load",
        "run_id": "scheduled__2026-01-02",
        "try_number": 2,
        "max_tries": 3,
        "state": "failed",
        "log_url": LOG_URL,
        "map_index": -1,
        "duration": 12.5,
    }
    return SimpleNamespace(**{**fields, **overrides})


def full_context(**overrides: Any) -> dict[str, Any]:
    context = {
        "dag": SimpleNamespace(dag_id="etl"),
        "ti": ti(),
        "run_id": "scheduled__2026-01-02",
        "logical_date": pendulum.datetime(2026, 1, 2, tz="UTC"),
        "exception": ValueError("bad row 17: <null> in 'amount'\nTraceback line that is not wanted"),
    }
    context.update(overrides)
    return context


def test_failure_message_from_full_context() -> None:
    assert default_message(full_context()) == "\n".join(
        [
            "❌ Airflow task etl.load failed",
            "DAG: etl",
            "Task: load",
            "Run: scheduled__2026-01-02",
            "Logical date: 2026-01-02 00:00:00+00:00",
            "Try: 2 of 4",
            "Error: ValueError: bad row 17: <null> in 'amount'",
            f"Log: {LOG_URL}",
        ]
    )


def test_exception_line_is_truncated() -> None:
    text = default_message(full_context(exception=RuntimeError("x" * 1000)))
    error_line = next(line for line in text.splitlines() if line.startswith("Error: "))
    assert len(error_line) <= len("Error: ") + 300 and error_line.endswith("...")


def test_reduced_context_without_ti_exception_or_log_url() -> None:
    context = {
        "dag": SimpleNamespace(dag_id="etl"),
        "dag_run": SimpleNamespace(run_id="r9", state="failed", logical_date=None),
        "reason": "task_failure",
    }
    assert (
        default_message(context) == "❌ Airflow DAG etl run failed\nDAG: etl\nRun: r9\nReason: task_failure"
    )


def test_ti_without_log_url_or_end_date() -> None:
    context = full_context(ti=ti(log_url=None, duration=None), exception=None)
    text = default_message(context)
    assert "Log:" not in text
    # No exception in the context (`airflow dags test` on Airflow 3.0-3.2): say where the error is.
    assert "Error: see the task log" in text.splitlines()
    assert text.startswith("❌ Airflow task etl.load failed")


def test_failure_without_exception_points_to_the_log_link() -> None:
    text = default_message(full_context(exception=None))
    lines = text.splitlines()
    log_line = next(line for line in lines if line.startswith("Log: "))
    assert f"Error: see the task log: {log_line.removeprefix('Log: ')}" in lines
    success = default_message(full_context(ti=ti(state="success"), exception=None))
    assert "Error:" not in success


def test_properties_that_raise_are_skipped() -> None:
    class Angry:
        dag_id = "etl"
        task_id = "load"
        state = "failed"

        @property
        def log_url(self) -> str:
            raise RuntimeError("no webserver configured")

    text = default_message({"ti": Angry()})
    assert text == "❌ Airflow task etl.load failed\nDAG: etl\nTask: load\nError: see the task log"


def test_empty_context() -> None:
    assert default_message({}) == "ℹ️ Airflow DAG (unknown DAG) run finished"


#: Each place a notifier can sit, the context Airflow gives it there, and the headline.
CALLBACK_PLACES: dict[str, tuple[dict[str, Any], str]] = {
    "on_execute_callback": (
        {"ti": ti(state="running", try_number=1), "exception": None},
        "▶️ Airflow task etl.load started",
    ),
    "on_success_callback": (
        {"ti": ti(state="success"), "exception": None},
        "✅ Airflow task etl.load succeeded",
    ),
    "on_failure_callback": ({"ti": ti(state="failed")}, "❌ Airflow task etl.load failed"),
    "on_retry_callback": (
        {"ti": ti(state="up_for_retry")},
        "🔁 Airflow task etl.load failed and will be retried",
    ),
    "on_skipped_callback": (
        {"ti": ti(state="skipped"), "exception": None},
        "⏭️ Airflow task etl.load skipped",
    ),
    "DAG on_success_callback": (
        {
            "ti": None,
            "dag_run": SimpleNamespace(state="success", run_id="r1"),
            "reason": "success",
            "exception": None,
        },
        "✅ Airflow DAG etl run succeeded",
    ),
    "DAG on_success_callback, Airflow 2 (a skipped task's context)": (
        {
            "ti": ti(state="skipped"),
            "dag_run": SimpleNamespace(state="success", run_id="r1"),
            "reason": "success",
            "exception": None,
        },
        "✅ Airflow DAG etl run succeeded",
    ),
    "DAG on_failure_callback, Airflow 2 (the run still reads running)": (
        {
            "ti": ti(state="skipped"),
            "dag_run": SimpleNamespace(state="running", run_id="r1"),
            "reason": "task_failure",
        },
        "❌ Airflow DAG etl run failed",
    ),
    "DAG on_failure_callback": (
        {"ti": None, "dag_run": SimpleNamespace(state="failed", run_id="r1"), "reason": "task_failure"},
        "❌ Airflow DAG etl run failed",
    ),
    "Deadline Alert": (
        {"ti": None, "dag_run": {"dag_id": "etl", "state": "running"}, "deadline": {"deadline_time": "t"}},
        "⏰ Airflow DAG etl run missed its deadline",
    ),
}


@pytest.mark.parametrize("place", list(CALLBACK_PLACES))
def test_the_default_text_says_what_happened_at_each_callback_place(place: str) -> None:
    context, headline = CALLBACK_PLACES[place]
    text = default_message(full_context(**context))
    assert text.splitlines()[0] == headline
    if place in ("on_execute_callback", "on_skipped_callback", "on_success_callback"):
        assert "Error:" not in text


def test_the_default_text_of_an_airflow_2_sla_miss_callback(imkit: responses.RequestsMock) -> None:
    """Airflow 2 calls ``sla_miss_callback(dag, task_list, blocking_task_list, slas, blocking_tis)``."""
    imkit.post(URL, json={"RC": 0, "RM": "OK", "result": RESULT})
    slas = [
        SimpleNamespace(task_id="load"),
        SimpleNamespace(task_id="load"),
        SimpleNamespace(task_id="report"),
    ]
    ImkitNotifier(room="alerts", sender="bot")(
        SimpleNamespace(dag_id="etl"), "load\nreport", "extract", slas, []
    )
    assert sent_body(imkit)["message"] == "\n".join(
        ["⏱️ Airflow DAG etl missed an SLA", "DAG: etl", "Tasks: load, report", "Blocking: extract"]
    )


def test_retry_and_success_texts() -> None:
    retry = default_message(full_context(ti=ti(state="up_for_retry", try_number=1)))
    assert retry.splitlines()[0] == "🔁 Airflow task etl.load failed and will be retried"
    assert "Try: 1 of 4" in retry and "Error: ValueError" in retry
    success = default_message(full_context(ti=ti(state="success"), exception=None))
    assert success.splitlines()[0] == "✅ Airflow task etl.load succeeded"
    assert "Duration: 12.5 s" in success
    dag_success = default_message(
        {
            "dag": SimpleNamespace(dag_id="etl"),
            "dag_run": SimpleNamespace(state="success", run_id="r1"),
            "reason": "success",
        }
    )
    assert dag_success == "✅ Airflow DAG etl run succeeded\nDAG: etl\nRun: r1"


def test_state_enums_are_understood() -> None:
    from enum import Enum

    class State(Enum):
        UP_FOR_RETRY = "up_for_retry"

    assert event_of({"ti": ti(state=State.UP_FOR_RETRY)}) == "retry"


def test_mapped_task_index_shown() -> None:
    assert "Task: load [3]" in default_message(full_context(ti=ti(map_index=3)))


def test_alias_is_the_same_class() -> None:
    assert send_imkit_notification is ImkitNotifier
    assert ImkitNotifier.template_fields == (
        "room",
        "sender",
        "message",
        "message_type",
        "mentions",
        "imkit_conn_id",
    )


@pytest.fixture
def imkit(conn_env: Callable[..., None]) -> Iterator[responses.RequestsMock]:
    conn_env(host="https://app.imkit.io", password=API_KEY, extra={"backoff": 0.001, "max_backoff": 0.001})
    with responses.RequestsMock() as mock:
        yield mock


def sent_body(mock: responses.RequestsMock, index: int = -1) -> dict[str, Any]:
    import json

    return json.loads(mock.calls[index].request.body or b"")


def test_notify_sends_default_message(imkit: responses.RequestsMock) -> None:
    imkit.post(URL, json={"RC": 0, "RM": "OK", "result": RESULT})
    notifier = ImkitNotifier(room="alerts", sender="bot", mentions="oncall")
    notifier(full_context())
    body = sent_body(imkit)
    assert body["room"] == "alerts" and body["mentions"] == ["oncall"]
    assert body["message"].startswith("❌ Airflow task etl.load failed")
    assert notifier.result == RESULT


def test_custom_template_with_real_dag(imkit: responses.RequestsMock) -> None:
    imkit.post(URL, json={"RC": 0, "RM": "OK", "result": RESULT})
    dag = DAG("etl", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), schedule=None)
    notifier = ImkitNotifier(
        room="{{ params.room }}",
        sender="bot",
        message="{{ dag.dag_id }} failed on {{ ds }}: {{ exception }}",
        mentions=["{{ params.oncall }}"],
    )
    notifier(
        full_context(dag=dag, ds="2026-01-02", params={"room": "alerts", "oncall": "dana"}, exception="boom")
    )
    body = sent_body(imkit)
    assert (body["room"], body["message"], body["mentions"]) == (
        "alerts",
        "etl failed on 2026-01-02: boom",
        ["dana"],
    )


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """What was logged: Airflow 2 logs through `logging`, Airflow 3 through structlog to stdout."""
    captured = capsys.readouterr()
    return caplog.text or (captured.out + captured.err)


def test_template_with_missing_key_does_not_crash(
    imkit: responses.RequestsMock, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    imkit.post(URL, json={"RC": 0, "RM": "OK", "result": RESULT})
    dag = DAG("etl", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), schedule=None)  # StrictUndefined
    notifier = ImkitNotifier(
        room="alerts", sender="bot", message="Failed: {{ ti.log_url }} / {{ nothing.here }} !"
    )
    with caplog.at_level(logging.WARNING):
        notifier({"dag": dag})
    assert sent_body(imkit)["message"] == "Failed:  /  !"
    assert "refers to a missing value" in logged(caplog, capsys)


def test_dag_without_template_env_still_renders(imkit: responses.RequestsMock) -> None:
    """apache/airflow#64649: a SerializedDAG in the callback context has no get_template_env."""
    imkit.post(URL, json={"RC": 0, "RM": "OK", "result": RESULT})
    serialized_like = SimpleNamespace(dag_id="etl")
    ImkitNotifier(room="alerts", sender="bot", message="{{ dag.dag_id }} broke")({"dag": serialized_like})
    assert sent_body(imkit)["message"] == "etl broke"


def test_outage_logs_one_error_and_does_not_raise(
    imkit: responses.RequestsMock, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    imkit.post(URL, status=503, body="down")
    notifier = ImkitNotifier(room="alerts", sender="bot")
    with caplog.at_level(logging.ERROR):
        notifier(full_context())
    lines = [line for line in logged(caplog, capsys).splitlines() if "was not sent" in line]
    assert len(lines) == 1
    assert "IMKIT notification to room 'alerts' was not sent" in lines[0]
    assert "HTTP 503" in lines[0]
    assert len(imkit.calls) == 3 and notifier.result is None


def test_ambiguous_failures_are_reconciled_by_default(
    imkit: responses.RequestsMock, fake_client_time: FakeTime
) -> None:
    """A 502 after which the alert may be stored: read back through the settle window (five
    reads over 10 s), absent, sent again (once)."""
    imkit.post(URL, status=502, body="bad gateway")
    history = {"totalCount": 0, "data": [], "userDeletedIDs": [], "inspect": {}}
    imkit.get("https://app.imkit.io/rooms/alerts/messages/v3", json={"RC": 0, "RM": "OK", "result": history})
    imkit.post(URL, json={"RC": 0, "RM": "OK", "result": RESULT})
    notifier = ImkitNotifier(room="alerts", sender="bot")
    notifier(full_context())
    assert [c.request.method for c in imkit.calls] == ["POST", *["GET"] * 5, "POST"]
    assert notifier.result == RESULT and fake_client_time.sleeps[:4] == [2.5] * 4


def test_alert_text_is_redacted(imkit: responses.RequestsMock) -> None:
    from airflow.providers.common.compat.sdk import mask_secret

    secret = "s3cr3t-db-password-991"
    mask_secret(secret)
    imkit.post(URL, json={"RC": 0, "RM": "OK", "result": RESULT})
    ImkitNotifier(room="alerts", sender="bot")(
        full_context(exception=RuntimeError(f"login failed for {secret}"))
    )
    assert secret not in sent_body(imkit)["message"]


def test_async_notify_does_not_block_the_event_loop(conn_env: Callable[..., None]) -> None:
    """By construction, not by timing: the server holds its answer until a coroutine on the
    loop releases it. Were the send run on the loop, that coroutine could not run while the
    send waits: the send would end by the hold's cap first, and the check below would fail."""
    from airflow_provider_imkit.sandbox import Fault, ImkitSandbox

    with ImkitSandbox(api_key=API_KEY, rooms=["alerts"], users=["bot"]) as sandbox:
        conn_env(host=sandbox.url, password=API_KEY)
        sandbox.inject("/messages", Fault("hold", delay=20))
        notifier = ImkitNotifier(room="alerts", sender="bot", message="deadline missed")

        async def main() -> bool:
            send = asyncio.create_task(notifier.async_notify({}))
            while not sandbox.request_counts().get("POST /messages"):
                await asyncio.sleep(0.005)  # the loop runs: the request is held at the server
            held = not send.done()
            sandbox.release()
            await send
            return held

        assert asyncio.run(main()) is True  # the loop went on while the send was held
        assert [m["message"] for m in sandbox.received("alerts")] == ["deadline missed"]


def test_deadline_context_message() -> None:
    context = {
        "dag_run": {
            "dag_id": "etl",
            "dag_run_id": "scheduled__2026-01-02",
            "state": "running",
            "logical_date": "2026-01-02T00:00:00Z",
        },
        "deadline": {"id": "0199", "deadline_time": "2026-01-02T00:30:00Z"},
    }
    assert default_message(context) == "\n".join(
        [
            "⏰ Airflow DAG etl run missed its deadline",
            "DAG: etl",
            "Run: scheduled__2026-01-02",
            "Logical date: 2026-01-02T00:00:00Z",
            "Deadline: 2026-01-02T00:30:00Z",
        ]
    )


def test_deadline_alert_through_airflows_callback_trigger(conn_env: Callable[..., None]) -> None:
    """Airflow 3.1+ awaits the notifier in the triggerer: run its real CallbackTrigger."""
    trigger_module = pytest.importorskip(
        "airflow.triggers.callback",
        reason="CallbackTrigger is Airflow 3.2+ (Deadline Alerts need 3.1+; 3.1's trigger is not covered)",
    )
    from airflow_provider_imkit.sandbox import ImkitSandbox

    with ImkitSandbox(api_key=API_KEY, rooms=["alerts"], users=["bot"]) as sandbox:
        conn_env(host=sandbox.url, password=API_KEY)
        trigger = trigger_module.CallbackTrigger(
            callback_path="airflow_provider_imkit.notifications.imkit.ImkitNotifier",
            callback_kwargs={
                "room": "alerts",
                "sender": "bot",
                "mentions": ["dana"],
                "context": {
                    "dag_run": {"dag_id": "etl", "dag_run_id": "r1", "state": "running"},
                    "deadline": {"id": "1", "deadline_time": "2026-01-02T00:30:00Z"},
                },
            },
        )

        async def run() -> list[Any]:
            return [event async for event in trigger.run()]

        events = asyncio.run(run())
        assert events[-1].payload["state"] == "success", events[-1].payload
        (alert,) = sandbox.received("alerts")
        assert alert["message"].startswith("⏰ Airflow DAG etl run missed its deadline")
        assert alert["mentions"] == ["dana"]


def test_airflow_2_sla_miss_callback_form(imkit: responses.RequestsMock) -> None:
    """Airflow 2 calls an sla_miss_callback with five arguments, not a context."""
    imkit.post(URL, json={"RC": 0, "RM": "OK", "result": RESULT})
    dag = SimpleNamespace(dag_id="etl")
    ImkitNotifier(room="alerts", sender="bot", message="SLA missed in {{ dag.dag_id }}")(dag, [], [], [], [])
    assert sent_body(imkit)["message"] == "SLA missed in etl"
