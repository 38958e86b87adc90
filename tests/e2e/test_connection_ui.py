"""The `imkit` connection in real Airflow: the form's metadata and the connection test."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import airflow
import pytest
import requests

from airflow_provider_imkit.testing import airflow_bin
from tests.conftest import API_KEY
from tests.e2e.conftest import ExampleRuns

# With pytest-xdist: every test on the session's example runs in one worker (run once).
pytestmark = pytest.mark.xdist_group("example_runs")

AIRFLOW_3 = int(airflow.__version__.split(".")[0]) >= 3
AIRFLOW_3_2_PLUS = tuple(int(part) for part in airflow.__version__.split(".")[:2]) >= (3, 2)


def connections_test(example_runs: ExampleRuns, conn: dict[str, object]) -> str:
    env = {
        **example_runs.env,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_IMKIT_DEFAULT": json.dumps(conn),
    }
    done = subprocess.run(
        [airflow_bin(), "connections", "test", "imkit_default"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def test_airflow_connections_test_success(example_runs: ExampleRuns) -> None:
    counts = example_runs.sandbox.request_counts()
    before = counts.get("POST /messages", 0), counts.get("GET /admin/connection-count", 0)
    output = connections_test(
        example_runs, {"conn_type": "imkit", "host": example_runs.sandbox.url, "password": API_KEY}
    )
    assert "Connection success!" in output, output[-2000:]
    counts = example_runs.sandbox.request_counts()
    after = counts.get("POST /messages", 0), counts.get("GET /admin/connection-count", 0)
    assert after == (before[0], before[1] + 1)  # one read-only call, no message sent
    assert API_KEY not in output


def test_airflow_connections_test_bad_key(example_runs: ExampleRuns) -> None:
    output = connections_test(
        example_runs, {"conn_type": "imkit", "host": example_runs.sandbox.url, "password": "wrong-key-0000"}
    )
    assert "Connection failed!" in output, output[-2000:]
    assert "IMKIT rejected the API key (INVALID_API_KEY)" in output


def test_airflow_connections_test_wrong_base_url(example_runs: ExampleRuns) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    output = connections_test(
        example_runs, {"conn_type": "imkit", "host": f"http://127.0.0.1:{port}", "password": API_KEY}
    )
    assert "Connection failed!" in output
    assert "Cannot reach IMKIT at " in output


@pytest.mark.skipif(not AIRFLOW_3, reason="the API server is Airflow 3 (2.11 forms: test_provider.py)")
def test_api_server_hook_meta_lists_the_imkit_form(example_runs: ExampleRuns) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **example_runs.env,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "PYTHONWARNINGS": "default",
    }
    server = subprocess.Popen(
        [airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/api/v2/version", timeout=5)
                break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, "the API server exited"
            time.sleep(0.5)
        # 3.0-3.2 answer /ui/ only with a token: the simple auth manager's all-admins mode hands
        # one to anyone who asks (3.3 lets anonymous requests through in that mode).
        token = requests.get(f"{base}/auth/token", timeout=10)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"} if token.ok else {}
        response = requests.get(f"{base}/ui/connections/hook_meta", headers=headers, timeout=60)
        assert response.status_code == 200, response.text[:500]
        hooks = response.json()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    (imkit,) = [h for h in hooks if h["connection_type"] == "imkit"]
    assert imkit["hook_name"] == "IMKIT"
    fields = imkit["standard_fields"]
    assert fields["host"]["title"] == "Base URL" and fields["host"]["placeholder"] == "https://<app>.imkit.io"
    assert fields["password"]["title"] == "API key" and not fields["password"]["hidden"]
    assert fields["login"]["hidden"] and fields["port"]["hidden"] and fields["url_schema"]["hidden"]
    extra = imkit["extra_fields"]
    assert set(extra) == {
        "timeout",
        "max_attempts",
        "on_ambiguous",
        "read_back_settle",
        "proxy",
        "verify",
        "ca_bundle",
    }
    assert extra["timeout"]["schema"]["title"] == "Timeout (seconds)"
    if AIRFLOW_3_2_PLUS:  # conn-fields (3.0 and 3.1 show the hook's text widgets)
        # No literal "null" option, nothing pre-selected, and a checkbox (not a JSON box) for TLS.
        assert None not in extra["on_ambiguous"]["schema"]["enum"]
        assert extra["on_ambiguous"]["value"] is None, extra["on_ambiguous"]
        assert extra["verify"]["schema"]["type"] in ("boolean", ["boolean", "null"]), extra["verify"]
    assert "get_connection_form_widgets" not in output and "get_ui_field_behaviour" not in output
