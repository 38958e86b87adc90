"""Bad input across every public parameter: a clear error naming the field, and for every
check made before sending, zero requests seen by the server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_imkit.exceptions import (
    ImkitBadRequestError,
    ImkitConfigurationError,
    ImkitError,
    ImkitNotFoundError,
    ImkitValidationError,
)
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.notifications.imkit import ImkitNotifier
from airflow_provider_imkit.operators.imkit import (
    ImkitBatchSendMessageOperator,
    ImkitRecallMessageOperator,
    ImkitSendMessageOperator,
)
from airflow_provider_imkit.sandbox import ImkitSandbox
from tests.conftest import API_KEY

SEND: dict[str, Any] = {"room": "ops", "sender": "bot", "message": "hi"}

# (where, arguments, field named in the error, words in the error)
PRE_SEND = [
    ("send_message", {"room": None}, "room", "must be a string"),
    ("send_message", {"room": ""}, "room", "non-empty"),
    ("send_message", {"room": "   "}, "room", "non-empty"),
    ("send_message", {"room": 42}, "room", "must be a string"),
    ("send_message", {"room": ["ops"]}, "room", "must be a string"),
    ("send_message", {"room": "ops\n"}, "room", "whitespace"),
    ("send_message", {"room": "o\x07ps"}, "room", "control characters"),
    ("send_message", {"sender": ""}, "sender", "non-empty"),
    ("send_message", {"sender": {"_id": "bot"}}, "sender", "must be a string"),
    ("send_message", {"message": None}, "message", "must be a string"),
    ("send_message", {"message": ""}, "message", "non-empty"),
    ("send_message", {"message": " \n\t"}, "message", "non-empty"),
    ("send_message", {"message": b"bytes"}, "message", "must be a string"),
    ("send_message", {"message": {"text": "hi"}}, "message", "must be a string"),
    ("send_message", {"message_type": ""}, "message_type", "non-empty"),
    ("send_message", {"message_type": None}, "message_type", "must be a string"),
    ("send_message", {"push": "false"}, "push", "True, False or None"),
    ("send_message", {"push": 0}, "push", "True, False or None"),
    ("send_message", {"skip_total_badge": "yes"}, "skip_total_badge", "True, False or None"),
    ("send_message", {"mentions": 7}, "mentions", "list of user id strings"),
    ("send_message", {"mentions": {"alice": True}}, "mentions", "list of user id strings"),
    ("send_message", {"mentions": ["alice", ["bob"]]}, "mentions[1]", "must be a string"),
    ("send_message", {"mentions": [""]}, "mentions[0]", "non-empty"),
    ("send_message", {"mentions": ["alice", None]}, "mentions[1]", "must be a string"),
    ("send_batch", {"message": "m"}, "rooms", "at least one room or receiver"),
    (
        "send_batch",
        {"message": "m", "rooms": ["ops"], "values": {"ops": {"name": "x"}}},
        "values['ops']['name']",
        "'$name$'",
    ),
    (
        "send_batch",
        {"message": "m", "rooms": ["ops"], "values": {"team": {"$x$": "1"}}},
        "values",
        "not recipients",
    ),
    ("send_batch", {"message": "m", "receivers": [["alice"]]}, "receivers[0]", "must be a string"),
    ("recall_message", {"room": "ops", "message_id": ""}, "message_id", "non-empty"),
    ("recall_message", {"room": None, "message_id": "a" * 24}, "room", "must be a string"),
    ("upsert_user", {"user_id": ""}, "user_id", "non-empty"),
    ("upsert_user", {"user_id": "u", "nickname": 5}, "nickname", "must be a string"),
]


def call(hook: ImkitHook, where: str, kwargs: dict[str, Any]) -> Any:
    if where == "send_message":
        return hook.send_message(**{**SEND, **kwargs})
    return getattr(hook, where)(**kwargs)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    with ImkitSandbox(api_key=API_KEY, rooms=["ops"], users=["bot", "alice"]) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_IMKIT_DEFAULT", sandbox.connection_json())
        yield sandbox


def test_table_is_large_enough() -> None:
    assert len(PRE_SEND) + len(CONNECTIONS) + 4 >= 25


@pytest.mark.parametrize(
    ("where", "kwargs", "field", "words"),
    PRE_SEND,
    ids=[f"{w}-{f}-{i}" for i, (w, _, f, _) in enumerate(PRE_SEND)],
)
def test_hook_rejects_before_sending(
    server: ImkitSandbox, where: str, kwargs: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ImkitValidationError) as info, ImkitHook() as hook:
        call(hook, where, kwargs)
    assert info.value.field == field
    assert f"'{field}'" in str(info.value) and words in str(info.value)
    assert server.requests() == []


CONNECTIONS = [
    ({"host": "ftp://chat.example.com"}, "unsupported URL scheme 'ftp'"),
    ({"host": "chat.example.com", "schema": "gopher"}, "unsupported URL scheme 'gopher'"),
    ({"host": ""}, "no host"),
    ({"password": ""}, "no API key"),
    ({"password": API_KEY + "\n"}, "whitespace, control or non-ASCII"),
    ({"password": "key with spaces"}, "whitespace, control or non-ASCII"),
    ({"extra": {"timeout": "soon"}}, "extra 'timeout' must be a number"),
    ({"extra": {"max_attempts": 0}}, "max_attempts"),
    ({"extra": {"retry_on_ambiguous": "maybe"}}, "retry_on_ambiguous"),
]


@pytest.mark.parametrize(("fields", "words"), CONNECTIONS)
def test_bad_connection_rejected_before_sending(
    server: ImkitSandbox, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], words: str
) -> None:
    conn = {"conn_type": "imkit", "host": server.url, "password": API_KEY, **fields}
    monkeypatch.setenv("AIRFLOW_CONN_IMKIT_BAD", json.dumps(conn))
    with pytest.raises(ImkitConfigurationError) as info, ImkitHook("imkit_bad") as hook:
        hook.send_message(**SEND)
    assert "'imkit_bad'" in str(info.value) and words in str(info.value)
    assert API_KEY not in str(info.value)
    assert server.requests() == []


def test_operators_reject_before_sending(server: ImkitSandbox) -> None:
    # A number is an id's text (what native templates render), but None is no id at all.
    not_an_id: Any = [None]
    with pytest.raises(ImkitValidationError, match="'mentions\\[0\\]'"):
        ImkitSendMessageOperator(
            task_id="s", room="ops", sender="bot", message="m", mentions=not_an_id
        ).execute({})
    with pytest.raises(ImkitValidationError, match="'rooms'"):
        ImkitBatchSendMessageOperator(task_id="b", message="m").execute({})
    with pytest.raises(ImkitValidationError, match="'message_id'"):
        ImkitRecallMessageOperator(task_id="r", room="ops", message_id="  ").execute({})
    assert server.requests() == []


def test_notifier_logs_the_field_and_sends_nothing(
    server: ImkitSandbox, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    ImkitNotifier(room="", sender="bot")({})
    captured = capsys.readouterr()
    logged = caplog.text or captured.out + captured.err
    assert "was not sent: Invalid IMKIT argument 'room': must be a non-empty string" in logged
    assert server.requests() == []


def test_room_id_in_a_url_path_cannot_reach_another_endpoint(server: ImkitSandbox) -> None:
    with pytest.raises(ImkitNotFoundError), ImkitHook() as hook:
        hook.recall_message("../admin/clients?limit=1#", "a" * 24)
    (request,) = server.requests()
    assert request["path"] == "/rooms/..%2Fadmin%2Fclients%3Flimit%3D1%23/message"


def test_a_2mb_message_is_rejected_by_the_server(server: ImkitSandbox) -> None:
    with pytest.raises(ImkitBadRequestError) as info, ImkitHook() as hook:
        hook.send_message(room="ops", sender="bot", message="長" * (700 * 1024))  # 2.1 MB of UTF-8
    assert info.value.status_code == 413
    assert len(server.requests()) == 1 and server.received("ops") == []


def test_every_error_is_an_imkit_error() -> None:
    for cls in (ImkitValidationError, ImkitConfigurationError, ImkitBadRequestError, ImkitNotFoundError):
        assert issubclass(cls, ImkitError)
