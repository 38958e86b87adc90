"""Hook behaviour with HTTP mocked by `responses`: headers, body, retries, errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from airflow_provider_imkit.client.imkit import path_segment
from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import (
    ImkitAuthenticationError,
    ImkitConfigurationError,
    ImkitConnectionError,
    ImkitRateLimitError,
    ImkitServerError,
    ImkitValidationError,
)
from airflow_provider_imkit.hooks.imkit import ImkitHook
from tests.conftest import API_KEY, FakeTime

BASE = "https://app.imkit.io"
URL = f"{BASE}/messages"
MESSAGE = {"_id": "5f1e" + "0" * 20, "room": "ops", "message": "hi", "messageType": "text", "sender": "bot"}


def ok(result: object = MESSAGE) -> dict[str, object]:
    return {"RC": 0, "RM": "OK", "result": result}


@pytest.fixture
def hook(conn_env: Callable[..., None], fake_time: FakeTime) -> ImkitHook:
    conn_env(host=BASE, password=API_KEY)
    return ImkitHook(sleep=fake_time.sleep, clock=fake_time.clock)


@responses.activate
def test_send_message_request(hook: ImkitHook) -> None:
    responses.post(URL, json=ok())
    assert hook.send_message(room="ops", sender="bot", message="你好 🚀") == MESSAGE
    request = responses.calls[0].request
    assert request.headers["IM-API-KEY"] == API_KEY
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.body == '{"room":"ops","sender":"bot","message":"你好 🚀","messageType":"text"}'.encode()


@responses.activate
def test_optional_fields_camel_case(hook: ImkitHook) -> None:
    responses.post(URL, json=ok())
    hook.send_message(
        room="ops",
        sender="bot",
        message="m",
        message_type="announcement",
        push=False,
        skip_total_badge=True,
        mentions=["alice", "bob", "alice"],
    )
    body = json.loads(responses.calls[0].request.body or b"")
    assert body == {
        "room": "ops",
        "sender": "bot",
        "message": "m",
        "messageType": "announcement",
        "push": False,
        "skipTotalBadge": True,
        "mentions": ["alice", "bob"],
    }


@responses.activate
def test_extras_are_never_headers(conn_env: Callable[..., None]) -> None:
    conn_env(
        host=BASE, password=API_KEY, extra={"timeout": 5, "Authorization": "Bearer x", "headers": {"X": "1"}}
    )
    responses.post(URL, json=ok())
    ImkitHook().send_message(room="ops", sender="bot", message="m")
    headers = responses.calls[0].request.headers
    assert "Authorization" not in headers and "X" not in headers


@responses.activate
def test_sender_as_user_object_is_returned(hook: ImkitHook) -> None:
    result = {**MESSAGE, "sender": {"_id": "bot", "nickname": "Bot", "avatarUrl": ""}}
    responses.post(URL, json=ok(result))
    assert hook.send_message(room="ops", sender="bot", message="m")["sender"]["nickname"] == "Bot"


@responses.activate
def test_non_object_result_is_an_error(hook: ImkitHook) -> None:
    responses.post(URL, json=ok("queued"))
    with pytest.raises(Exception, match="expected a message object"):
        hook.send_message(room="ops", sender="bot", message="m")


@responses.activate
def test_429_then_success_waits_retry_after(hook: ImkitHook, sleeps: list[float]) -> None:
    responses.post(
        URL, status=429, json={"error": "RATE_LIMIT_EXCEEDED", "retryAfter": 2}, headers={"Retry-After": "3"}
    )
    responses.post(URL, json=ok())
    assert hook.send_message(room="ops", sender="bot", message="m")["_id"] == MESSAGE["_id"]
    assert sleeps == [3.0]
    assert len(responses.calls) == 2


@responses.activate
def test_429_over_cap_raises_at_once(hook: ImkitHook, sleeps: list[float]) -> None:
    responses.post(URL, status=429, json={"error": "RATE_LIMIT_EXCEEDED", "retryAfter": 3600})
    with pytest.raises(ImkitRateLimitError) as info:
        hook.send_message(room="ops", sender="bot", message="m")
    assert info.value.retry_after == 3600
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_503_retried_until_attempts_run_out(hook: ImkitHook, sleeps: list[float]) -> None:
    responses.post(URL, status=503, json={"RC": 503, "RM": "Unavailable"})
    with pytest.raises(ImkitServerError):
        hook.send_message(room="ops", sender="bot", message="m")
    assert len(responses.calls) == 3 and len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 504])
def test_ambiguous_5xx_not_resent_with_fail(conn_env: Callable[..., None], status: int) -> None:
    conn_env(host=BASE, password=API_KEY, extra={"on_ambiguous": "fail"})
    responses.post(URL, status=status, body="oops")
    with pytest.raises(ImkitServerError):
        ImkitHook().send_message(room="ops", sender="bot", message="m")
    assert len(responses.calls) == 1


HISTORY = f"{BASE}/rooms/ops/messages/v3"


def stored(message: str = "m", sender: Any = None, **fields: Any) -> dict[str, Any]:
    now = int(time.time() * 1000)
    base = {"_id": "f" * 24, "room": "ops", "message": message, "messageType": "text", "createdAtMS": now}
    return {**base, "sender": sender or {"_id": "bot", "nickname": "Bot"}, **fields}


def history(*messages: dict[str, Any]) -> dict[str, Any]:
    return ok({"totalCount": len(messages), "data": list(messages), "userDeletedIDs": [], "inspect": {}})


@responses.activate
@pytest.mark.parametrize("status", [500, 502, 504])
def test_ambiguous_5xx_reconciled_by_default_found(hook: ImkitHook, status: int) -> None:
    responses.post(URL, status=status, body="oops")
    responses.get(HISTORY, json=history(stored("other"), stored("m")))
    assert hook.send_message(room="ops", sender="bot", message="m")["_id"] == "f" * 24
    assert [c.request.method for c in responses.calls] == ["POST", "GET"]
    query = responses.calls[1].request.url or ""
    assert "timeRangeField=createdAt" in query and "afterTime=" in query


@responses.activate
def test_ambiguous_reconciled_absent_is_sent_again(hook: ImkitHook, sleeps: list[float]) -> None:
    responses.post(URL, status=502, body="bad gateway")
    responses.get(
        HISTORY, json=history(stored("m", sender="someone-else"), stored("m", messageType="announcement"))
    )
    responses.post(URL, json=ok())
    assert hook.send_message(room="ops", sender="bot", message="m") == MESSAGE
    # The settle rule: absent only once a read 10 s after the failure finds nothing.
    assert [c.request.method for c in responses.calls] == ["POST", *["GET"] * 5, "POST"]
    assert sleeps[:4] == [2.5, 2.5, 2.5, 2.5] and len(sleeps) == 5


@responses.activate
def test_settle_window_finds_a_message_stored_late(hook: ImkitHook, sleeps: list[float]) -> None:
    responses.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    responses.get(HISTORY, json=history())
    responses.get(HISTORY, json=history())
    responses.get(HISTORY, json=history(stored("m")))
    sent = hook.send_message(room="ops", sender="bot", message="m")
    assert sent["_id"] == "f" * 24  # the stored one
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "GET", "GET"]
    assert sleeps == [2.5, 2.5]


@responses.activate
def test_500_answered_by_imkit_reads_back_once(hook: ImkitHook, sleeps: list[float]) -> None:
    """IMKIT itself answered: nothing can still be storing, so one read decides."""
    responses.post(URL, status=500, json={"RC": 500, "RM": "Internal error"})
    responses.get(HISTORY, json=history())
    responses.post(URL, json=ok())
    assert hook.send_message(room="ops", sender="bot", message="m") == MESSAGE
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "POST"]


@responses.activate
def test_a_gateway_s_500_page_is_no_answer_from_imkit(hook: ImkitHook, sleeps: list[float]) -> None:
    """A 500 HTML page from a proxy is not IMKIT's answer: the settle window applies."""
    responses.post(URL, status=500, body="<html>500 Internal Server Error</html>")
    responses.get(HISTORY, json=history())
    responses.post(URL, json=ok())
    assert hook.send_message(room="ops", sender="bot", message="m") == MESSAGE
    assert [c.request.method for c in responses.calls] == ["POST", *["GET"] * 5, "POST"]


@responses.activate
def test_deadline_inside_the_settle_window_never_resends(
    conn_env: Callable[..., None], fake_time: FakeTime
) -> None:
    conn_env(host=BASE, password=API_KEY, extra={"deadline": 4})
    responses.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    responses.get(HISTORY, json=history())
    with pytest.raises(ImkitConnectionError) as info:
        ImkitHook(sleep=fake_time.sleep, clock=fake_time.clock).send_message(
            room="ops", sender="bot", message="m"
        )
    assert info.value.maybe_delivered is True
    assert any("may still store it" in note for note in getattr(info.value, "__notes__", []))
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "GET"]


@responses.activate
def test_read_back_settle_extra(conn_env: Callable[..., None], fake_time: FakeTime) -> None:
    conn_env(host=BASE, password=API_KEY, extra={"read_back_settle": 2})
    responses.post(URL, body=requests.exceptions.ConnectionError("connection reset"))
    responses.get(HISTORY, json=history())
    responses.post(URL, json=ok())
    hook = ImkitHook(sleep=fake_time.sleep, clock=fake_time.clock)
    assert hook.settings.retry.settle == 2
    assert hook.send_message(room="ops", sender="bot", message="m") == MESSAGE
    assert fake_time.sleeps[:4] == [0.5, 0.5, 0.5, 0.5]


@responses.activate
def test_ambiguous_read_back_impossible_raises_the_ambiguous_error(hook: ImkitHook) -> None:
    responses.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    responses.get(HISTORY, status=500, body="history down")
    with pytest.raises(ImkitConnectionError) as info:
        hook.send_message(room="ops", sender="bot", message="m")
    assert info.value.maybe_delivered is True
    assert any("Read-back" in note for note in getattr(info.value, "__notes__", []))
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "GET"]


@responses.activate
def test_ambiguous_retried_when_opted_in(conn_env: Callable[..., None], fake_time: FakeTime) -> None:
    conn_env(host=BASE, password=API_KEY, extra={"retry_on_ambiguous": True})
    responses.post(URL, status=502, body="<html>bad gateway</html>")
    responses.post(URL, json=ok())
    assert ImkitHook(sleep=fake_time.sleep).send_message(room="ops", sender="bot", message="m") == MESSAGE
    assert len(responses.calls) == 2


@responses.activate
def test_connect_error_retried_read_timeout_not(hook: ImkitHook) -> None:
    responses.post(URL, body=requests.exceptions.ConnectTimeout("connect timed out"))
    responses.post(URL, json=ok())
    assert hook.send_message(room="ops", sender="bot", message="m") == MESSAGE
    responses.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ImkitConnectionError) as info:
        hook.send_message(room="ops", sender="bot", message="m")
    assert info.value.maybe_delivered is True


@responses.activate
def test_401_is_not_retried_and_fails_fast(hook: ImkitHook) -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    responses.post(
        URL,
        status=401,
        json={"RC": 401, "RM": "Unauthorized", "error": {"code": "INVALID_API_KEY", "message": "bad key"}},
    )
    with pytest.raises(ImkitAuthenticationError) as info:
        hook.send_message(room="ops", sender="bot", message="m")
    assert isinstance(info.value, AirflowFailException)
    assert len(responses.calls) == 1


@responses.activate
def test_redirect_is_not_followed(hook: ImkitHook) -> None:
    responses.post(URL, status=301, headers={"Location": "https://evil.example.com/messages"})
    with pytest.raises(Exception, match="redirected to https://evil.example.com/messages"):
        hook.send_message(room="ops", sender="bot", message="m")
    assert len(responses.calls) == 1


@responses.activate
def test_server_text_echoing_the_key_is_redacted(hook: ImkitHook) -> None:
    responses.post(
        URL,
        status=400,
        json={
            "RC": 400,
            "RM": "Bad",
            "error": {"code": "INVALID_REQUEST", "message": f"header IM-API-KEY={API_KEY}"},
        },
    )
    with pytest.raises(Exception) as info:
        hook.send_message(room="ops", sender="bot", message="m")
    assert API_KEY not in str(info.value) and "***" in str(info.value)


def test_validation_happens_before_any_request(hook: ImkitHook) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for kwargs in (
            {"room": ""},
            {"sender": None},
            {"message": "  "},
            {"message_type": ""},
            {"push": "yes"},
            {"skip_total_badge": 1},
            {"mentions": [1]},
        ):
            with pytest.raises(ImkitValidationError):
                hook.send_message(**{"room": "ops", "sender": "bot", "message": "m", **kwargs})  # type: ignore[arg-type]
        assert len(mock.calls) == 0


def test_missing_host_names_connection(conn_env: Callable[..., None]) -> None:
    conn_env("imkit_nohost", password=API_KEY)
    with pytest.raises(ImkitConfigurationError, match="'imkit_nohost': no host"):
        ImkitHook("imkit_nohost").send_message(room="ops", sender="bot", message="m")


def test_key_with_newline_rejected_without_echo(conn_env: Callable[..., None]) -> None:
    conn_env(host=BASE, password=API_KEY + "\n")
    with pytest.raises(ImkitConfigurationError) as info:
        ImkitHook().send_message(room="ops", sender="bot", message="m")
    assert API_KEY not in str(info.value)


def test_uri_form_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IMKIT_URI", f"imkit://:{API_KEY}@chat.example.com:8443")
    hook = ImkitHook("imkit_uri")
    assert hook.settings.base_url == "https://chat.example.com:8443"
    assert hook.settings.api_key == API_KEY
    monkeypatch.setenv("AIRFLOW_CONN_IMKIT_HTTP", f"imkit://:{API_KEY}@127.0.0.1:8099/http?timeout=5")
    assert ImkitHook("imkit_http").settings.base_url == "http://127.0.0.1:8099"
    assert ImkitHook("imkit_http").settings.timeout == (5.0, 5.0)
    monkeypatch.setenv("AIRFLOW_CONN_IMKIT_ENC", "imkit://:a%2Fb%2Bc%3D%3D@app.imkit.io")
    assert ImkitHook("imkit_enc").settings.api_key == "a/b+c=="


def test_hook_settings_precedence(conn_env: Callable[..., None]) -> None:
    conn_env(host=BASE, password=API_KEY, extra={"max_attempts": 5, "timeout": 4})
    hook = ImkitHook(retry=RetryPolicy(max_attempts=2, on_ambiguous="resend"))
    assert hook.settings.retry.max_attempts == 2
    assert hook.settings.retry.on_ambiguous == "resend"
    assert ImkitHook(retry=4).settings.retry == RetryPolicy.from_int(4)
    assert ImkitHook().settings.retry.max_attempts == 5
    assert hook.settings.timeout == (4.0, 4.0)
    assert ImkitHook(timeout=(1, 9)).settings.timeout == (1.0, 9.0)


def test_get_conn_is_the_client(hook: ImkitHook) -> None:
    from airflow_provider_imkit.client import ImkitClient

    assert isinstance(hook.get_conn(), ImkitClient)
    assert hook.get_conn() is hook.client


def test_session_per_thread_and_close(hook: ImkitHook) -> None:
    main = hook.get_conn().session()
    assert hook.get_conn().session() is main
    other: list[requests.Session] = []
    thread = threading.Thread(target=lambda: other.append(hook.get_conn().session()))
    thread.start()
    thread.join()
    assert other[0] is not main
    hook.close()
    assert hook.get_conn().session() is not main


def test_path_segment_encodes_everything() -> None:
    assert path_segment("../admin") == "..%2Fadmin"
    assert path_segment("a b?c#d") == "a%20b%3Fc%23d"
    assert path_segment("團隊") == "%E5%9C%98%E9%9A%8A"


def test_hook_attributes() -> None:
    assert (
        ImkitHook.conn_name_attr,
        ImkitHook.default_conn_name,
        ImkitHook.conn_type,
        ImkitHook.hook_name,
    ) == ("imkit_conn_id", "imkit_default", "imkit", "IMKIT")
    behaviour = ImkitHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API key"}


def test_key_is_registered_with_the_secret_masker(conn_env: Callable[..., None]) -> None:
    from airflow.providers.common.compat.sdk import redact

    key = "bWFza2VkLWtleS1mb3ItdGVzdHM="
    conn_env(host=BASE, password=key)
    assert ImkitHook().settings.api_key == key
    assert key not in str(redact(f"the key is {key}"))


def test_proxies_come_from_the_environment_once(
    conn_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_env(host=BASE, password=API_KEY)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    session = ImkitHook().get_conn().session()
    assert session.trust_env is False  # no per-request environment scan, no ~/.netrc
    assert session.proxies == {"https": "http://proxy.internal:3128"}
    monkeypatch.setenv("NO_PROXY", "app.imkit.io")
    assert ImkitHook().get_conn().session().proxies == {}
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("NO_PROXY")
    assert ImkitHook().get_conn().session().proxies == {}


def test_proxy_extra_wins(conn_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> None:
    conn_env(host=BASE, password=API_KEY, extra={"proxy": "http://corp-proxy:8080"})
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert ImkitHook().get_conn().session().proxies == {
        "http": "http://corp-proxy:8080",
        "https": "http://corp-proxy:8080",
    }


def test_verify_respects_requests_ca_bundle_only_when_on(
    conn_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    conn_env(host=BASE, password=API_KEY)
    assert ImkitHook().get_conn().session().verify == "/etc/ssl/bundle.pem"
    conn_env(host=BASE, password=API_KEY, extra={"verify": "/opt/ca.pem"})
    assert ImkitHook().get_conn().session().verify == "/opt/ca.pem"
    conn_env(host=BASE, password=API_KEY, extra={"verify": False})
    assert ImkitHook().get_conn().session().verify is False


def page(messages: list[dict[str, Any]], total: int | None) -> dict[str, Any]:
    result: dict[str, Any] = {"data": messages, "userDeletedIDs": [], "inspect": {}}
    if total is not None:
        result["totalCount"] = total
    return ok(result)


def others(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [stored(f"other {i}", _id=f"{i:024x}") for i in range(start, start + count)]


@responses.activate
def test_read_back_pages_on_while_the_server_says_there_is_more(hook: ImkitHook) -> None:
    """A server capping `limit` at 50: a short page is not proof of absence while totalCount says more."""
    responses.get(HISTORY, json=page(others(50), 120))
    responses.get(HISTORY, json=page(others(50, 50), 120))
    responses.get(HISTORY, json=page([*others(19, 100), stored("m")], 120))
    found = hook.find_message(room="ops", sender="bot", message="m", since_ms=0)
    assert found is not None and found["_id"] == "f" * 24
    assert "beforeMessage=" in (responses.calls[1].request.url or "")


@responses.activate
def test_read_back_absent_and_too_many(hook: ImkitHook) -> None:
    from airflow_provider_imkit.exceptions import ImkitReadBackError

    responses.get(HISTORY, json=page(others(3), 3))
    assert hook.find_message(room="ops", sender="bot", message="m", since_ms=0) is None
    responses.reset()
    for index in range(5):
        responses.get(HISTORY, json=page(others(100, index * 100), 900))
    with pytest.raises(ImkitReadBackError, match="more than 500 messages") as info:
        hook.find_message(room="ops", sender="bot", message="m", since_ms=0)
    assert info.value.maybe_delivered is True  # absence could not be proven


@responses.activate
def test_older_servers_403_names_room_sender_and_connection(hook: ImkitHook) -> None:
    responses.post(URL, status=403, json={"RC": 403, "RM": "Forbidden"})
    with pytest.raises(ImkitAuthenticationError) as info:
        hook.send_message(room="ops", sender="bot", message="m")
    assert "connection 'imkit_default'" in str(info.value) and "room 'ops'" in str(info.value)
    assert "sender 'bot'" in str(info.value)


def test_settings_cache_keys_on_everything(conn_env: Callable[..., None]) -> None:
    conn_env(host=BASE, password=API_KEY)
    low = RetryPolicy(random=lambda: 0.0)
    high = RetryPolicy(random=lambda: 1.0)
    assert ImkitHook(retry=low).settings.retry.random is low.random
    assert ImkitHook(retry=high).settings.retry.random is high.random
    assert ImkitHook(timeout=[2, 9]).settings.timeout == (2.0, 9.0)  # type: ignore[arg-type]


def test_airflow_env_refuses_a_dags_folder_that_does_not_exist(tmp_path: Path) -> None:
    from airflow_provider_imkit.testing import airflow_env

    with pytest.raises(FileNotFoundError, match="dags_folder 'dags/' is not a folder"):
        airflow_env(tmp_path, "dags/")
    assert airflow_env(tmp_path, tmp_path)["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path.resolve())
