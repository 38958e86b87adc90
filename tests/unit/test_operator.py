"""The operator with a real DAG: templating, template files, XCom return, failure semantics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pendulum
import pytest
import responses
from airflow.providers.common.compat.sdk import DAG, AirflowFailException

from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import ImkitServerError
from airflow_provider_imkit.operators.imkit import ImkitSendMessageOperator
from tests.conftest import API_KEY

URL = "https://app.imkit.io/messages"
RESULT = {"_id": "a" * 24, "room": "ops", "message": "x", "messageType": "text", "sender": "bot"}


def make_dag(tmp_path: Path) -> DAG:
    return DAG(
        dag_id="t_operator",
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        schedule=None,
        template_searchpath=[str(tmp_path)],
    )


def render(op: ImkitSendMessageOperator, **context: Any) -> None:
    op.resolve_template_files()
    full: Any = {"ds": "2026-01-02", "params": {}, **context}
    op.render_template_fields(context=full)


def test_template_fields_rendered(tmp_path: Path) -> None:
    with make_dag(tmp_path):
        op = ImkitSendMessageOperator(
            task_id="t",
            room="{{ params.room }}",
            sender="bot-{{ ds_nodash }}",
            message="Done for {{ ds }}",
            message_type="{{ 'announcement' }}",
            mentions=["{{ params.oncall }}", "bob"],
            imkit_conn_id="{{ params.conn }}",
        )
    render(op, ds_nodash="20260102", params={"room": "ops", "oncall": "alice", "conn": "imkit_x"})
    assert (op.room, op.sender, op.message, op.message_type, op.mentions, op.imkit_conn_id) == (
        "ops",
        "bot-20260102",
        "Done for 2026-01-02",
        "announcement",
        ["alice", "bob"],
        "imkit_x",
    )
    assert set(ImkitSendMessageOperator.template_fields) == {
        "room",
        "sender",
        "message",
        "message_type",
        "mentions",
        "imkit_conn_id",
    }


def test_message_template_file(tmp_path: Path) -> None:
    (tmp_path / "messages").mkdir()
    (tmp_path / "messages" / "daily_report.md").write_text("# Report {{ ds }}\nAll green ✅")
    with make_dag(tmp_path):
        op = ImkitSendMessageOperator(
            task_id="t", room="ops", sender="bot", message="messages/daily_report.md"
        )
    render(op)
    assert op.message == "# Report 2026-01-02\nAll green ✅"


def test_text_ending_in_md_is_not_a_file(tmp_path: Path) -> None:
    with make_dag(tmp_path):
        op = ImkitSendMessageOperator(
            task_id="t", room="ops", sender="bot", message="Read CHANGES.md for {{ ds }}.md"
        )
    render(op)
    assert op.message == "Read CHANGES.md for 2026-01-02.md"


@responses.activate
def test_execute_returns_message_object(conn_env: Callable[..., None]) -> None:
    conn_env(host="https://app.imkit.io", password=API_KEY)
    responses.post(URL, json={"RC": 0, "RM": "OK", "result": RESULT})
    op = ImkitSendMessageOperator(
        task_id="t", room="ops", sender="bot", message="x", push=False, mentions="alice"
    )
    assert op.execute({}) == RESULT


@responses.activate
def test_permanent_errors_fail_without_retries(conn_env: Callable[..., None]) -> None:
    conn_env(host="https://app.imkit.io", password=API_KEY)
    responses.post(
        URL,
        status=404,
        json={"RC": 404, "RM": "Not Found", "error": {"code": "ROOM_NOT_FOUND", "message": "no room"}},
    )
    op = ImkitSendMessageOperator(task_id="t", room="nope", sender="bot", message="x")
    with pytest.raises(AirflowFailException, match="ROOM_NOT_FOUND"):
        op.execute({})
    with pytest.raises(AirflowFailException, match="'room'"):
        ImkitSendMessageOperator(task_id="t2", room="", sender="bot", message="x").execute({})


@responses.activate
def test_transient_errors_propagate_for_airflow_retries(conn_env: Callable[..., None]) -> None:
    conn_env(host="https://app.imkit.io", password=API_KEY, extra={"max_attempts": 1})
    responses.post(URL, status=503, body="down")
    op = ImkitSendMessageOperator(task_id="t", room="ops", sender="bot", message="x")
    with pytest.raises(ImkitServerError) as info:
        op.execute({})
    assert not isinstance(info.value, AirflowFailException)


def test_operator_settings_reach_the_hook(conn_env: Callable[..., None]) -> None:
    conn_env("imkit_other", host="https://app.imkit.io", password=API_KEY)
    op = ImkitSendMessageOperator(
        task_id="t",
        room="ops",
        sender="bot",
        message="x",
        imkit_conn_id="imkit_other",
        timeout=4,
        retry=RetryPolicy(max_attempts=7, on_ambiguous="resend"),
    )
    settings = op.get_hook().settings
    assert settings.conn_id == "imkit_other"
    assert settings.timeout == (4.0, 4.0)
    assert (settings.retry.max_attempts, settings.retry.on_ambiguous) == (7, "resend")
