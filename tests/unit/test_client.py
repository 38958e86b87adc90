"""ImkitClient on its own: no Airflow in the process, subjects in errors, shapes of results."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import responses

from airflow_provider_imkit.client import ImkitClient
from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.client.settings import ImkitSettings
from airflow_provider_imkit.exceptions import ImkitApiError, ImkitAuthenticationError, ImkitNotFoundError
from tests.conftest import API_KEY

BASE = "https://app.imkit.io"


def client() -> ImkitClient:
    return ImkitClient.from_settings(ImkitSettings(conn_id="imkit_ops", base_url=BASE, api_key=API_KEY))


@pytest.mark.parametrize("block", ["meta_path", "sys_modules_none"])
def test_client_is_an_sdk_where_airflow_cannot_be_imported(block: str) -> None:
    """A process in which ``import airflow`` fails (a finder that refuses it, or the usual
    ``sys.modules["airflow"] = None``): the client's endpoints work over real HTTP, with the
    exactly-once read-back, and the errors are typed."""
    blocker = {
        "meta_path": """
class NoAirflow:
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ImportError("airflow is not importable here")
sys.meta_path.insert(0, NoAirflow())
""",
        "sys_modules_none": 'sys.modules["airflow"] = None\n',
    }[block]
    code = (
        "import sys\n"
        + blocker
        + textwrap.dedent(
            f"""
        from airflow_provider_imkit.client import ImkitClient, RetryPolicy
        from airflow_provider_imkit.exceptions import ImkitError, ImkitNotFoundError
        from airflow_provider_imkit.sandbox import Fault, ImkitSandbox

        with ImkitSandbox(api_key={API_KEY!r}, rooms=["ops", "dev"], users=["bot", "ann"]) as sandbox:
            with ImkitClient(sandbox.url, {API_KEY!r}, timeout=5, deadline=30,
                             retry=RetryPolicy(settle=0)) as client:
                bot = client.upsert_user("bot", nickname="Bot")
                assert bot["_id"] == "bot" and not any("token" in k.lower() for k in bot), bot
                # The first answer is lost after the message is stored: read back, sent once.
                sandbox.inject("/messages", Fault("close_after"))
                sent = client.send_message(room="ops", sender="bot", message="hi", mentions="ann")
                assert [m["_id"] for m in sandbox.received("ops")] == [sent["_id"]]
                listed = client.room_messages("ops", since_ms=0)
                assert [m["_id"] for m in listed] == [sent["_id"]], listed
                batch = client.send_batch(message="to all", rooms=["ops", "dev"], sender="bot")
                assert batch["count"] == 2, batch
                recalled = client.recall_message("ops", sent["_id"])
                assert recalled["messageType"] == "recall", recalled
                try:
                    client.send_message(room="nope", sender="bot", message="hi")
                except ImkitNotFoundError as exc:
                    assert "room 'nope'" in str(exc) and exc.room == "nope", exc
                else:
                    raise AssertionError("no error")
        loaded = sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))
        assert loaded in ([], ["airflow"]) and sys.modules.get("airflow") is None, loaded
        assert ImkitError.__mro__[1].__module__ == "airflow_provider_imkit.exceptions"
        print("ok")
        """
        )
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


def test_the_0_2_0_form_with_settings_still_builds_a_client() -> None:
    settings = ImkitSettings(conn_id="old", base_url=BASE, api_key=API_KEY)
    c = ImkitClient(settings)
    assert c.settings is settings
    with pytest.raises(TypeError, match="takes no api_key"):
        ImkitClient(settings, API_KEY)


def test_errors_are_airflow_exceptions_when_only_the_client_is_imported() -> None:
    """In a process with Airflow loaded (a task using the client directly), the client's
    errors are AirflowExceptions, the permanent ones AirflowFailExceptions."""
    code = (
        "import airflow\n"
        "from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException\n"
        "from airflow_provider_imkit.client import ImkitClient\n"
        "from airflow_provider_imkit.exceptions import ImkitConfigurationError, ImkitServerError\n"
        "assert issubclass(ImkitConfigurationError, AirflowFailException)\n"
        "assert issubclass(ImkitServerError, AirflowException)\n"
        "assert not issubclass(ImkitServerError, AirflowFailException)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_client_checks_its_arguments_before_sending() -> None:
    from airflow_provider_imkit.exceptions import ImkitConfigurationError, ImkitValidationError

    with pytest.raises(ImkitConfigurationError, match="no API key"):
        ImkitClient(BASE, "")
    with pytest.raises(ImkitConfigurationError, match="unsupported URL scheme"):
        ImkitClient("ftp://app.imkit.io", API_KEY)
    c = ImkitClient(BASE, API_KEY, timeout=(2, 7), deadline=9, retry=1, verify="/ca.pem", proxy="http://p:3")
    assert c.settings.timeout == (2.0, 7.0) and c.settings.deadline == 9.0
    assert c.settings.retry.max_attempts == 1 and c.settings.verify == "/ca.pem"
    assert c.session().proxies == {"http": "http://p:3", "https": "http://p:3"}
    assert API_KEY not in repr(c.settings)
    with pytest.raises(ImkitValidationError, match="room"):
        c.send_message(room="", sender="bot", message="hi")  # no request: responses is not active
    c.close()


@responses.activate
def test_errors_name_their_subject() -> None:
    def not_found(code: str) -> dict[str, object]:
        return {"RC": 404, "RM": "Not Found", "error": {"code": code, "message": "does not exist"}}

    responses.post(f"{BASE}/messages", status=404, json=not_found("ROOM_NOT_FOUND"))
    responses.post(f"{BASE}/messages", status=404, json=not_found("CLIENT_NOT_FOUND"))
    responses.post(f"{BASE}/messages", status=401, json={"error": "INVALID_API_KEY", "message": "bad key"})
    subject = {"room": "ops-room", "sender": "bot-7"}
    with pytest.raises(ImkitNotFoundError) as room:
        client().request("POST", "/messages", json_body={}, subject=subject)
    assert "[room 'ops-room']" in str(room.value) and room.value.room == "ops-room"
    with pytest.raises(ImkitNotFoundError) as sender:
        client().request("POST", "/messages", json_body={}, subject=subject)
    assert "[sender 'bot-7']" in str(sender.value) and sender.value.sender == "bot-7"
    with pytest.raises(ImkitAuthenticationError) as auth:
        client().request("POST", "/messages", json_body={}, subject=subject)
    assert "[connection 'imkit_ops']" in str(auth.value) and auth.value.conn_id == "imkit_ops"
    assert API_KEY not in str(auth.value)


@responses.activate
def test_user_calls_name_the_user() -> None:
    body = {"RC": 404, "RM": "Not Found", "error": {"code": "CLIENT_NOT_FOUND", "message": "no such user"}}
    responses.post(f"{BASE}/admin/clients", status=404, json=body)
    with pytest.raises(ImkitNotFoundError, match=r"\[user 'u-1'\]") as info:
        client().request("POST", "/admin/clients", json_body={}, subject={"user_id": "u-1"})
    assert info.value.user_id == "u-1" and info.value.sender is None


@responses.activate
def test_result_shape_is_checked_once_for_every_endpoint() -> None:
    responses.get(f"{BASE}/x", json={"RC": 0, "RM": "OK", "result": ["a"]})
    with pytest.raises(ImkitApiError, match="expected a thing as result, got list"):
        client().request("GET", "/x", expect="a thing")
    assert client().request("GET", "/x", expect=None) == ["a"]


@responses.activate
def test_request_returns_the_result_only_and_logs_retries(caplog: pytest.LogCaptureFixture) -> None:
    responses.get(f"{BASE}/x", status=503, body="busy")
    responses.get(f"{BASE}/x", json={"RC": 0, "RM": "OK", "result": {"count": 1}})
    waits: list[float] = []
    c = ImkitClient.from_settings(
        ImkitSettings(conn_id="c", base_url=BASE, api_key=API_KEY), sleep=waits.append
    )
    with caplog.at_level("INFO", logger="airflow_provider_imkit.client"):
        assert c.request("GET", "/x", retry=RetryPolicy(backoff=0.5, jitter=0)) == {"count": 1}
    assert waits == [0.5]
    assert "attempt 1 failed" in caplog.text and "succeeded on attempt 2" in caplog.text


def test_errors_are_airflow_exceptions_whatever_the_import_order() -> None:
    """A DAG file or test that imports the provider's retry module before Airflow: the
    operators' import still makes permanent errors AirflowFailExceptions (fail fast)."""
    code = textwrap.dedent(
        """
        import sys
        from airflow_provider_imkit.client.retry import RetryPolicy
        from airflow_provider_imkit.exceptions import ImkitNotFoundError, ImkitServerError
        assert "airflow" not in sys.modules
        from airflow_provider_imkit.operators.imkit import ImkitSendMessageOperator
        from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
        assert issubclass(ImkitNotFoundError, AirflowFailException), ImkitNotFoundError.__mro__
        assert issubclass(ImkitServerError, AirflowException)
        assert not issubclass(ImkitServerError, AirflowFailException)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
