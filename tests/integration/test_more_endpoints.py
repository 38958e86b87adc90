"""Batch sends, recall, sender bootstrap and test_connection over real HTTP to the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_imkit.exceptions import ImkitNotFoundError, ImkitValidationError
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.operators.imkit import (
    ImkitBatchSendMessageOperator,
    ImkitRecallMessageOperator,
    ImkitSendMessageOperator,
)
from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
from tests.conftest import API_KEY


def test_send_batch_with_per_recipient_values(sandbox: ImkitSandbox) -> None:
    sandbox.add_room("team-a")
    with ImkitHook() as hook:
        result = hook.send_batch(
            message="Hi $team$, data for $day$ is ready",
            rooms=["ops", "team-a"],
            receivers="alice",
            values={
                "ops": {"$team$": "Ops", "$day$": "Mon"},
                "team-a": {"$team$": "A", "$day$": 1},
                "alice": {"$team$": "Alice", "$day$": "Mon"},
            },
            sender="bot",
        )
    assert result["count"] == 3 and len(result["batchID"]) == 24
    sandbox.flush_batches()
    assert [m["message"] for m in sandbox.received("ops")] == ["Hi Ops, data for Mon is ready"]
    assert [m["message"] for m in sandbox.received("team-a")] == ["Hi A, data for 1 is ready"]
    assert [m["message"] for m in sandbox.received("direct:bot:alice")] == ["Hi Alice, data for Mon is ready"]
    assert sandbox.received("ops")[0]["push"] is False  # this endpoint's default


def test_send_batch_body(sandbox: ImkitSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, object]] = []
    with ImkitHook() as hook:
        original = hook.client.request

        def spy(method: str, path: str, **kwargs: Any) -> Any:
            sent.append({"path": path, **kwargs})
            return original(method, path, **kwargs)

        monkeypatch.setattr(hook.client, "request", spy)
        hook.send_batch(message="m", rooms="ops", push=True, message_type="announcement")
    assert sent[0]["json_body"] == {
        "message": "m",
        "messageType": "announcement",
        "paras": [{"room": "ops"}],
        "push": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "rooms"),
        ({"rooms": []}, "rooms"),
        ({"rooms": ["ops", ""]}, "rooms[1]"),
        ({"rooms": ["ops"], "values": {"nope": {"$x$": "1"}}}, "values"),
        ({"rooms": ["ops"], "values": {"ops": {"name": "1"}}}, "values['ops']['name']"),
        ({"rooms": ["ops"], "values": {"ops": {"$a b$": "1"}}}, "values['ops']['$a b$']"),
        ({"rooms": ["ops"], "values": {"ops": {"$x$": ["list"]}}}, "values['ops']['$x$']"),
        ({"rooms": ["ops"], "values": {"ops": "flat"}}, "values['ops']"),
        ({"rooms": ["ops"], "values": ["ops"]}, "values"),
        ({"rooms": ["ops"], "sender": ""}, "sender"),
    ],
)
def test_send_batch_validation(sandbox: ImkitSandbox, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ImkitValidationError) as info, ImkitHook() as hook:
        hook.send_batch(message="m", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert sandbox.request_counts() == {}


def test_recall_message(sandbox: ImkitSandbox) -> None:
    with ImkitHook() as hook:
        sent = hook.send_message(room="ops", sender="bot", message="pipeline running…")
        recalled = hook.recall_message("ops", sent["_id"])
        assert (recalled["_id"], recalled["message"], recalled["messageType"]) == (sent["_id"], "", "recall")
        assert recalled["sender"]["_id"] == "bot"  # a user object here, as documented
        with pytest.raises(ImkitNotFoundError) as info:
            hook.recall_message("ops", "0" * 24)
        assert info.value.code == "MESSAGE_NOT_FOUND"
    assert sandbox.received("ops")[0]["messageType"] == "recall"


def test_recall_room_id_cannot_escape_its_path(sandbox: ImkitSandbox) -> None:
    with pytest.raises(ImkitNotFoundError) as info, ImkitHook() as hook:
        hook.recall_message("../admin/clients", "a" * 24)
    assert info.value.code == "ROOM_NOT_FOUND"
    assert sandbox.requests()[0]["path"] == "/rooms/..%2Fadmin%2Fclients/message"


def test_upsert_user_never_returns_a_token(sandbox: ImkitSandbox) -> None:
    with ImkitHook() as hook:
        user = hook.upsert_user("etl-bot", nickname="ETL Bot 🤖", avatar_url="https://example.com/bot.png")
        assert user["_id"] == "etl-bot" and user["nickname"] == "ETL Bot 🤖"
        assert not any("token" in key.lower() for key in user)
        hook.send_message(room="ops", sender="etl-bot", message="hello from a new bot")


def test_upsert_user_drops_a_token_the_server_sends_anyway(sandbox: ImkitSandbox) -> None:
    body = {
        "RC": 0,
        "RM": "OK",
        "result": {"_id": "u", "nickname": "U", "token": "user-token-secret", "accessToken": "x"},
    }
    sandbox.inject("/admin/clients", Fault.respond(200, body))
    with ImkitHook() as hook:
        assert hook.upsert_user("u") == {"_id": "u", "nickname": "U"}


def test_test_connection(sandbox: ImkitSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    with ImkitHook() as hook:
        ok, text = hook.test_connection()
    assert ok and text.startswith(f"Connected to IMKIT at {sandbox.url}")
    assert sandbox.request_counts() == {"GET /admin/connection-count": 1}

    def check(conn: dict[str, object]) -> tuple[bool, str]:
        monkeypatch.setenv("AIRFLOW_CONN_IMKIT_T", json.dumps({"conn_type": "imkit", **conn}))
        with ImkitHook("imkit_t") as hook:
            return hook.test_connection()

    ok, text = check({"host": sandbox.url, "password": "wrong-key-1234"})
    assert not ok and "IMKIT rejected the API key (INVALID_API_KEY)" in text and "wrong-key-1234" not in text
    ok, text = check({"host": sandbox.url + "/not-imkit", "password": API_KEY})
    assert not ok and "not as IMKIT's Platform API" in text
    with ImkitSandbox() as gone:
        closed = gone.url
    ok, text = check({"host": closed, "password": API_KEY})
    assert not ok and text.startswith("Cannot reach IMKIT at http")
    ok, text = check({"password": API_KEY})
    assert not ok and "no host" in text
    ok, text = check(
        {"host": "https://127.0.0.1:1", "password": API_KEY}
    )  # nothing listens: one attempt only
    assert not ok and "Cannot reach" in text


def test_send_operator_ensure_sender(sandbox: ImkitSandbox) -> None:
    op = ImkitSendMessageOperator(
        task_id="t", room="ops", sender="new-bot", message="hi", ensure_sender=True, sender_nickname="New Bot"
    )
    op.execute({})
    assert sandbox.user("new-bot")["nickname"] == "New Bot"
    assert sandbox.received("ops")[0]["sender"] == "new-bot"


def test_batch_and_recall_operators(sandbox: ImkitSandbox) -> None:
    batch = ImkitBatchSendMessageOperator(
        task_id="b", message="hey $who$", rooms=["ops"], values={"ops": {"$who$": "ops"}}, sender="bot"
    )
    assert batch.execute({})["count"] == 1
    sent = ImkitSendMessageOperator(task_id="s", room="ops", sender="bot", message="running").execute({})
    recalled = ImkitRecallMessageOperator(task_id="r", room="ops", message_id=sent["_id"]).execute({})
    assert recalled["messageType"] == "recall"
    assert set(ImkitBatchSendMessageOperator.template_fields) == {
        "message",
        "rooms",
        "receivers",
        "values",
        "sender",
        "message_type",
        "imkit_conn_id",
    }
    assert set(ImkitRecallMessageOperator.template_fields) == {"room", "message_id", "imkit_conn_id"}
