"""The sandbox itself, over plain HTTP (no hook): endpoints, control API, lifecycle."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests

from airflow_provider_imkit.sandbox import ImkitSandbox
from tests.conftest import API_KEY

HEADERS = {"IM-API-KEY": API_KEY}


def call(
    sandbox: ImkitSandbox, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.request(
        method, sandbox.url + path, json=body, headers=HEADERS if headers is None else headers, timeout=5
    )


def test_envelope_ids_and_timestamps(sandbox: ImkitSandbox) -> None:
    before = int(time.time() * 1000)
    response = call(
        sandbox, "POST", "/messages", {"room": "ops", "sender": "bot", "message": "hi", "messageType": "text"}
    )
    body = response.json()
    assert response.status_code == 200 and body["RC"] == 0 and body["RM"] == "OK"
    message = body["result"]
    assert re.fullmatch(r"[0-9a-f]{24}", message["_id"])
    assert before <= message["messageTimeMS"] <= int(time.time() * 1000)
    assert {
        "_id",
        "room",
        "message",
        "messageType",
        "sender",
        "appID",
        "messageTimeMS",
        "updatedAtMS",
        "createdAtMS",
    } <= set(message)


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "MISSING_API_KEY"), ({"IM-API-KEY": "nope-nope-nope"}, "INVALID_API_KEY")],
)
def test_auth_errors(sandbox: ImkitSandbox, headers: dict[str, str], code: str) -> None:
    response = call(sandbox, "POST", "/messages", {}, headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == code
    assert all(API_KEY not in json.dumps(r) for r in sandbox.requests())


@pytest.mark.parametrize("missing", ["message", "messageType", "room", "sender"])
def test_missing_parameter(sandbox: ImkitSandbox, missing: str) -> None:
    body = {"room": "ops", "sender": "bot", "message": "hi", "messageType": "text"}
    del body[missing]
    response = call(sandbox, "POST", "/messages", body)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "MISSING_PARAMETER",
        "message": f"Missing required parameter: {missing}",
    }


def test_admin_rooms_and_history(sandbox: ImkitSandbox) -> None:
    user = call(sandbox, "POST", "/admin/clients", {"_id": "carol", "nickname": "Carol"}).json()["result"]
    assert user["nickname"] == "Carol" and "token" not in user
    clients = call(sandbox, "GET", "/admin/clients?limit=1").json()["result"]
    assert clients["totalCount"] == 4 and len(clients["data"]) == 1
    assert call(sandbox, "GET", "/admin/connection-count").json()["result"] == {"count": 0}
    room = call(
        sandbox,
        "POST",
        "/rooms/",
        {"_id": "new-room", "name": "New", "roomType": "group", "members": ["carol"]},
    ).json()["result"]
    assert room["_id"] == "new-room"
    assert call(sandbox, "GET", "/rooms/new-room").json()["result"]["members"] == ["carol"]
    assert call(sandbox, "GET", "/rooms/missing").json()["error"]["code"] == "ROOM_NOT_FOUND"
    for text in ("one", "two", "three"):
        call(
            sandbox,
            "POST",
            "/messages",
            {"room": "new-room", "sender": "carol", "message": text, "messageType": "text"},
        )
    history = call(sandbox, "GET", "/rooms/new-room/messages/v3?limit=2").json()["result"]
    assert [m["message"] for m in history["data"]] == ["three", "two"]


def test_recall(sandbox: ImkitSandbox) -> None:
    sent = call(
        sandbox,
        "POST",
        "/messages",
        {"room": "ops", "sender": "bot", "message": "oops", "messageType": "text"},
    ).json()["result"]
    recalled = call(
        sandbox, "POST", "/rooms/ops/message", {"_id": sent["_id"], "messageType": "recall"}
    ).json()["result"]
    assert recalled["message"] == "" and recalled["messageType"] == "recall"
    assert recalled["sender"]["_id"] == "bot"
    missing = call(sandbox, "POST", "/rooms/ops/message", {"_id": "0" * 24, "messageType": "recall"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "MESSAGE_NOT_FOUND"


def test_batch_is_queued_then_delivered(sandbox: ImkitSandbox) -> None:
    sandbox.add_room("r2")
    body = {
        "message": "Hi $name$",
        "messageType": "text",
        "sender": "bot",
        "paras": [
            {"room": "ops", "$name$": "Ops"},
            {"room": "r2", "$name$": "Two"},
            {"receiver": "alice", "$name$": "Alice"},
        ],
    }
    result = call(sandbox, "POST", "/messages/batch", body).json()["result"]
    assert result["count"] == 3 and re.fullmatch(r"[0-9a-f]{24}", result["batchID"])
    sandbox.app.flush_batches()
    assert [m["message"] for m in sandbox.received("ops")] == ["Hi Ops"]
    assert sandbox.received("ops")[0]["push"] is False
    assert [m["message"] for m in sandbox.received("r2")] == ["Hi Two"]
    assert [m["message"] for m in sandbox.received("direct:bot:alice")] == ["Hi Alice"]


def test_auto_create() -> None:
    with ImkitSandbox(api_key=API_KEY, auto_create=True) as sandbox:
        response = call(
            sandbox,
            "POST",
            "/messages",
            {"room": "any", "sender": "anyone", "message": "hi", "messageType": "text"},
        )
        assert response.status_code == 200
        assert sandbox.received("any")[0]["sender"] == "anyone"


def test_control_api_over_http(sandbox: ImkitSandbox) -> None:
    fault = {
        "path": "/messages",
        "times": 2,
        "kind": "status",
        "status": 503,
        "body": {"RC": 503, "RM": "down"},
    }
    assert call(sandbox, "POST", "/_sandbox/faults", fault).json()["result"] == {
        "path": "/messages",
        "times": 2,
    }
    body = {"room": "ops", "sender": "bot", "message": "hi", "messageType": "text"}
    assert [call(sandbox, "POST", "/messages", body).status_code for _ in range(3)] == [503, 503, 200]
    rooms = call(sandbox, "GET", "/_sandbox/rooms").json()["result"]
    assert [m["message"] for m in rooms["ops"]] == ["hi"]
    requests_seen = call(sandbox, "GET", "/_sandbox/requests").json()["result"]
    assert requests_seen["counts"] == {"POST /messages": 3}
    assert [r["fault"] for r in requests_seen["requests"]] == ["status", "status", None]
    assert all(
        set(r) == {"method", "path", "key_present", "key_valid", "status", "fault", "completed"}
        for r in requests_seen["requests"]
    )
    assert call(sandbox, "POST", "/_sandbox/faults", {"path": "/messages", "kind": "nope"}).status_code == 400
    assert call(sandbox, "GET", "/_sandbox/rooms", headers={"IM-API-KEY": "wrong-wrong"}).status_code == 401
    call(sandbox, "POST", "/_sandbox/reset")
    assert sandbox.received("ops") == [] and sandbox.request_counts() == {}


def test_rate_limit_header_option() -> None:
    with ImkitSandbox(api_key=API_KEY, rate_limit=1, retry_after_header=True) as sandbox:
        call(sandbox, "GET", "/admin/connection-count")
        limited = call(sandbox, "GET", "/admin/connection-count")
        assert limited.status_code == 429
        body = limited.json()
        assert body["error"] == "RATE_LIMIT_EXCEEDED" and 1 <= body["retryAfter"] <= 60
        assert limited.headers["Retry-After"] == str(body["retryAfter"])


def test_inbox_escapes_message_text(sandbox: ImkitSandbox) -> None:
    call(
        sandbox,
        "POST",
        "/messages",
        {
            "room": "ops",
            "sender": "bot",
            "message": "<script>alert(1)</script> 你好",
            "messageType": "text",
            "mentions": ["alice"],
        },
    )
    page = requests.get(sandbox.url + "/", timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 你好" in page.text
    assert '<span class="mention">@alice</span>' in page.text


def test_keep_alive_and_concurrency(sandbox: ImkitSandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def worker(n: int) -> int:
        with requests.Session() as session:
            for i in range(25):
                response = session.post(
                    sandbox.url + "/messages",
                    headers=HEADERS,
                    timeout=5,
                    json={"room": "ops", "sender": "bot", "message": f"{n}-{i}", "messageType": "text"},
                )
                assert response.status_code == 200
        return n

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert len(sandbox.received("ops")) == 200


def test_stop_leaves_no_thread_even_with_open_keep_alive_connections() -> None:
    before = set(threading.enumerate())
    sandbox = ImkitSandbox(api_key=API_KEY).start()
    session = requests.Session()
    session.get(sandbox.url + "/admin/connection-count", headers=HEADERS, timeout=5)  # stays open
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 5
    assert set(threading.enumerate()) - before == set()
    session.close()


def test_cli_prints_connection(tmp_path: Any) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_imkit.sandbox",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--room",
            "ops",
            "--user",
            "bot",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        proc.stdout.readline()
        export = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url, first
        value = json.loads(export.split("=", 1)[1].strip().strip("'"))
        assert value == {"conn_type": "imkit", "host": url.group(0), "password": API_KEY}
        response = requests.post(
            url.group(0) + "/messages",
            headers=HEADERS,
            timeout=5,
            json={"room": "ops", "sender": "bot", "message": "cli", "messageType": "text"},
        )
        assert response.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_pytest_fixture_sets_the_connection(imkit_sandbox: ImkitSandbox) -> None:
    from airflow_provider_imkit.hooks.imkit import ImkitHook

    imkit_sandbox.add_room("ops")
    imkit_sandbox.add_user("bot")
    with ImkitHook() as hook:
        hook.send_message(room="ops", sender="bot", message="via fixture")
    assert imkit_sandbox.received("ops")[0]["message"] == "via fixture"
