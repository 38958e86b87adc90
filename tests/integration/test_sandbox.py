"""The sandbox itself, over plain HTTP (no hook): endpoints, control API, lifecycle."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests

from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
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
    sandbox.flush_batches()
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
        set(r)
        == {
            "method",
            "path",
            "key_present",
            "key_valid",
            "status",
            "fault",
            "completed",
            "user_agent",
            "result_id",
        }
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
    sandbox.stop()  # returns although the client keeps its connection open
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


def test_clear_faults(sandbox: ImkitSandbox) -> None:
    sandbox.inject("*", Fault("empty"), times=3)
    sandbox.clear_faults()
    assert call(sandbox, "GET", "/admin/connection-count").json()["result"] == {"count": 0}


# -- a bug inside the sandbox answers 500 and fails the test ------------------------------------


def boom() -> None:
    raise RuntimeError("bug in an endpoint")


def test_a_sandbox_bug_answers_500_and_check_reraises(monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = ImkitSandbox(api_key=API_KEY).start()
    monkeypatch.setattr(sandbox.app, "_connection_count", boom)
    try:
        response = call(sandbox, "GET", "/admin/connection-count")
        assert response.status_code == 500
        error = response.json()["error"]
        assert (
            error["code"] == "SANDBOX_INTERNAL_ERROR"
            and "RuntimeError: bug in an endpoint" in error["message"]
        )
        assert sandbox.requests()[-1]["status"] == 500
        # Faults that process the request meet the bug too; still a 500, not a network fault.
        sandbox.inject("/admin/connection-count", Fault("delay"))
        assert call(sandbox, "GET", "/admin/connection-count").status_code == 500
    finally:
        sandbox.stop()  # never raises
    assert [str(e) for e in sandbox.errors] == ["bug in an endpoint"] * 2
    with pytest.raises(RuntimeError, match="bug in an endpoint") as info:
        sandbox.check()
    assert "GET /admin/connection-count" in "".join(info.value.__notes__)


def test_the_fixture_fails_a_test_that_met_a_sandbox_bug(tmp_path: Any) -> None:
    (tmp_path / "test_bug.py").write_text(
        "import requests\n"
        "def test_meets_a_bug(imkit_sandbox, monkeypatch):\n"
        "    monkeypatch.setattr(imkit_sandbox.app, '_connection_count', lambda: 1 / 0)\n"
        "    url = imkit_sandbox.url + '/admin/connection-count'\n"
        "    assert requests.get(url, headers={'IM-API-KEY': imkit_sandbox.api_key}).status_code == 500\n"
    )
    done = subprocess.run(
        # A user's project: none of this suite's settings (looptime's plugin, which wants
        # pytest-asyncio, is off here only through pyproject.toml).
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:looptime_plugin",
            "test_bug.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout
    assert "ERROR at teardown of test_meets_a_bug" in done.stdout
    assert "ZeroDivisionError: division by zero" in done.stdout


def test_bad_content_length_is_a_400_not_a_bug(sandbox: ImkitSandbox) -> None:
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as raw:
        raw.sendall(b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 400 ")
    assert sandbox.errors == []


# -- the CLI -------------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "airflow_provider_imkit.sandbox"]


def test_cli_port_in_use() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([*CLI, "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"imkit-sandbox: port {port} on 127.0.0.1 is already in use; "
        "pick another with --port N, or --port 0 for a free one"
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_stops_on_a_signal(signum: int) -> None:
    proc = subprocess.Popen(
        [*CLI, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert url
        assert requests.get(url.group(0) + "/", timeout=5).status_code == 200
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(url.group(1))), timeout=5).close()


def test_read_latency_answers_room_reads_late_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from airflow_provider_imkit.client import ImkitClient
    from airflow_provider_imkit.sandbox import pipeline

    waited: list[float] = []
    monkeypatch.setattr(pipeline, "time", SimpleNamespace(sleep=waited.append))
    with (
        ImkitSandbox(rooms=["ops"], users=["bot"], read_latency=0.2) as server,
        ImkitClient(server.url, server.api_key) as client,
    ):
        client.send_message(room="ops", sender="bot", message="hello")
        assert [m["message"] for m in client.room_messages("ops", since_ms=0)] == ["hello"]
        client.upsert_user("carol")
    assert waited == [0.2]  # the one room read; the send and the upsert were answered at once
    with pytest.raises(ValueError, match="read_latency"):
        ImkitSandbox(read_latency=-1)
