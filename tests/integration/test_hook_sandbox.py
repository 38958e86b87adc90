"""The hook and operator over real HTTP against the sandbox: results, errors, faults."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import (
    ImkitApiError,
    ImkitAuthenticationError,
    ImkitBadRequestError,
    ImkitConnectionError,
    ImkitNotFoundError,
    ImkitRateLimitError,
    ImkitServerError,
)
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.operators.imkit import ImkitSendMessageOperator
from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
from tests.conftest import API_KEY, FakeTime

SEND: dict[str, Any] = {"room": "ops", "sender": "bot", "message": "hello"}


def make_hook(sleeps: list[float], **kwargs: Any) -> ImkitHook:
    fake = FakeTime(sleeps)
    return ImkitHook(sleep=fake.sleep, clock=fake.clock, **kwargs)


def test_cjk_and_emoji_round_trip_byte_exact(sandbox: ImkitSandbox, sleeps: list[float]) -> None:
    text = '部署完成 ✅ 請查看報表 👉 <b>&amp;</b> "quoted" \\ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢\nsecond line'
    with make_hook(sleeps) as hook:
        result = hook.send_message(
            room="ops", sender="bot", message=text, mentions=["alice", "bob"], push=False
        )
    stored = sandbox.received("ops")
    assert len(stored) == 1
    assert stored[0]["message"].encode("utf-8") == text.encode("utf-8")
    assert result["message"] == text
    assert result["_id"] == stored[0]["_id"] and len(result["_id"]) == 24
    assert stored[0]["mentions"] == ["alice", "bob"] and stored[0]["push"] is False
    assert isinstance(result["messageTimeMS"], int)


def test_server_defaults_apply_when_flags_omitted(sandbox: ImkitSandbox, sleeps: list[float]) -> None:
    with make_hook(sleeps) as hook:
        hook.send_message(**SEND)
    (stored,) = sandbox.received("ops")
    assert stored["push"] is True and stored["skipTotalBadge"] is False and stored["messageType"] == "text"


@pytest.mark.parametrize(
    ("kwargs", "cls", "code"),
    [
        ({"room": "nope"}, ImkitNotFoundError, "ROOM_NOT_FOUND"),
        ({"sender": "ghost"}, ImkitNotFoundError, "CLIENT_NOT_FOUND"),
    ],
)
def test_documented_not_found_errors(
    sandbox: ImkitSandbox, sleeps: list[float], kwargs: dict[str, str], cls: type[ImkitApiError], code: str
) -> None:
    with pytest.raises(cls) as info, make_hook(sleeps) as hook:
        hook.send_message(**{**SEND, **kwargs})
    assert info.value.status_code == 404 and info.value.code == code
    assert sandbox.request_counts() == {"POST /messages": 1}


def test_invalid_key(sandbox: ImkitSandbox, sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMKIT_DEFAULT",
        json.dumps({"conn_type": "imkit", "host": sandbox.url, "password": "wrong-key-123456"}),
    )
    with pytest.raises(ImkitAuthenticationError) as info, make_hook(sleeps) as hook:
        hook.send_message(**SEND)
    assert info.value.code == "INVALID_API_KEY"
    assert "wrong-key-123456" not in str(info.value)
    assert sandbox.requests()[0]["key_valid"] is False


def test_missing_parameter_and_too_large(sandbox: ImkitSandbox, sleeps: list[float]) -> None:
    with make_hook(sleeps) as hook:
        with pytest.raises(ImkitBadRequestError) as info:
            hook.request(
                "POST", "/messages", json_body={"room": "ops", "sender": "bot", "messageType": "text"}
            )
        assert info.value.code == "MISSING_PARAMETER" and "message" in (info.value.message or "")
        with pytest.raises(ImkitBadRequestError) as big:
            hook.send_message(room="ops", sender="bot", message="x" * (2 * 1024 * 1024))
        assert big.value.status_code == 413
    assert sandbox.received("ops") == []


def test_429_then_success(sandbox: ImkitSandbox, sleeps: list[float]) -> None:
    sandbox.inject("/messages", Fault.rate_limited(retry_after=2, header=True))
    with make_hook(sleeps) as hook:
        assert hook.send_message(**SEND)["room"] == "ops"
    assert sleeps == [2.0]
    assert [r["status"] for r in sandbox.requests()] == [429, 200]
    assert len(sandbox.received("ops")) == 1


def test_real_rate_limit_of_the_sandbox(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    now = [1_000_040.0]  # 20 s into a minute (1_000_020 is a multiple of 60)
    with ImkitSandbox(
        api_key=API_KEY, rooms=["ops"], users=["bot"], rate_limit=2, clock=lambda: now[0]
    ) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_IMKIT_DEFAULT", sandbox.connection_json())
        with make_hook(sleeps, retry=1) as hook:
            hook.send_message(**SEND)
            hook.send_message(**SEND)
            with pytest.raises(ImkitRateLimitError) as info:
                hook.send_message(**SEND)
        assert info.value.retry_after == 40  # until the next minute starts
        now[0] += 40
        with make_hook(sleeps, retry=1) as hook:
            hook.send_message(**SEND)  # a new minute, a new budget


@pytest.mark.parametrize(
    ("fault", "cls", "stored"),
    [
        (Fault("close_before"), ImkitConnectionError, 0),
        (Fault("close_after"), ImkitConnectionError, 1),
        (Fault("malformed_json"), ImkitApiError, 0),
        (Fault("html"), ImkitServerError, 0),
        (Fault("rc_error"), ImkitServerError, 0),
        (Fault("empty"), ImkitApiError, 0),
        (Fault.respond(500, {"RC": 500, "RM": "Internal Server Error"}), ImkitServerError, 0),
        (Fault.respond(504, "gateway timeout"), ImkitServerError, 0),
        (
            Fault.respond(
                403, {"RC": 403, "RM": "Forbidden", "error": {"code": "PERMISSION_DENIED", "message": "no"}}
            ),
            ImkitAuthenticationError,
            0,
        ),
    ],
)
def test_ambiguous_and_permanent_faults_are_not_retried(
    sandbox: ImkitSandbox, sleeps: list[float], fault: Fault, cls: type[Exception], stored: int
) -> None:
    sandbox.inject("/messages", fault)
    with pytest.raises(cls) as info, make_hook(sleeps, retry=RetryPolicy(on_ambiguous="fail")) as hook:
        hook.send_message(**SEND)
    assert sandbox.request_counts() == {"POST /messages": 1}
    assert len(sandbox.received("ops")) == stored
    if isinstance(info.value, ImkitConnectionError):
        assert info.value.maybe_delivered is True


def test_503_retried_then_success(sandbox: ImkitSandbox, sleeps: list[float]) -> None:
    sandbox.inject("/messages", Fault.respond(503, {"RC": 503, "RM": "Service Unavailable"}), times=2)
    with make_hook(sleeps) as hook:
        hook.send_message(**SEND)
    assert sandbox.request_counts() == {"POST /messages": 3}
    assert len(sandbox.received("ops")) == 1 and len(sleeps) == 2


def test_resend_on_ambiguous_may_post_twice(sandbox: ImkitSandbox, sleeps: list[float]) -> None:
    sandbox.inject("/messages", Fault("close_after"))
    with make_hook(sleeps, retry=RetryPolicy(on_ambiguous="resend")) as hook:
        hook.send_message(**SEND)
    assert len(sandbox.received("ops")) == 2  # the documented trade-off


def test_read_timeout_is_ambiguous(sandbox: ImkitSandbox, sleeps: list[float]) -> None:
    sandbox.inject("/messages", Fault("delay", delay=0.5))
    with (
        pytest.raises(ImkitConnectionError, match="read timeout") as info,
        make_hook(sleeps, timeout=(2, 0.1), retry=RetryPolicy(on_ambiguous="fail")) as hook,
    ):
        hook.send_message(**SEND)
    assert info.value.maybe_delivered is True


def test_slow_first_byte_under_the_timeout_succeeds(sandbox: ImkitSandbox, sleeps: list[float]) -> None:
    sandbox.inject("/messages", Fault("delay", delay=0.2))
    with make_hook(sleeps, timeout=(2, 2)) as hook:
        hook.send_message(**SEND)
    assert len(sandbox.received("ops")) == 1


def test_connection_refused_is_retried_and_not_delivered(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    with ImkitSandbox(api_key=API_KEY) as gone:
        url = gone.url
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMKIT_DEFAULT", json.dumps({"conn_type": "imkit", "host": url, "password": API_KEY})
    )
    with pytest.raises(ImkitConnectionError, match="cannot connect") as info, make_hook(sleeps) as hook:
        hook.send_message(**SEND)
    assert info.value.maybe_delivered is False
    assert len(sleeps) == 2


def test_operator_against_sandbox(sandbox: ImkitSandbox) -> None:
    op = ImkitSendMessageOperator(
        task_id="t", room="ops", sender="bot", message="from operator", mentions="alice"
    )
    result = op.execute({})
    assert sandbox.received("ops")[0]["_id"] == result["_id"]
    assert sandbox.received("ops")[0]["mentions"] == ["alice"]


def test_one_hook_shared_by_threads(sandbox: ImkitSandbox, sleeps: list[float]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with make_hook(sleeps) as hook, ThreadPoolExecutor(4) as pool:
        ids = list(
            pool.map(lambda i: hook.send_message(room="ops", sender="bot", message=f"m{i}")["_id"], range(40))
        )
    assert len(set(ids)) == 40
    assert sorted(m["message"] for m in sandbox.received("ops")) == sorted(f"m{i}" for i in range(40))
