"""The IMKIT connection form of the newest Airflow's UI, in a real headless Chromium: the
fields a platform engineer sees, what Save stores, and the Test button (Airflow 3.3.2's
port-0 bug, apache/airflow#73298, and the documented way around it)."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
from typing import Any

import pytest
import requests

from airflow_provider_imkit.sandbox import ImkitSandbox
from airflow_provider_imkit.testing import airflow_bin, airflow_env, migrate
from tests.conftest import API_KEY, ROOT, not_the_primary_pass
from tests.integration.test_inbox_browser import chromium  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

FIELDS_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll('input')).filter(e => e.name)
    .map(e => [e.name, {type: e.type, placeholder: e.placeholder, value: e.value, checked: e.checked}]))"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_connection_form_and_its_test_button(chromium: list[str]) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    elsewhere = not_the_primary_pass()
    if elsewhere is not None:
        pytest.skip(f"the UI form is {elsewhere}")
    with (
        ImkitSandbox(api_key=API_KEY) as sandbox,
        tempfile.TemporaryDirectory(prefix="imkit-form-airflow-") as home,
    ):
        env = airflow_env(
            home,
            ROOT / "example_dags",
            {
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            },
        )
        migrate(env)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    requests.get(f"{base}/api/v2/version", timeout=5)
                    break
                except requests.ConnectionError:
                    assert server.poll() is None and time.monotonic() < deadline, (
                        "the API server did not start"
                    )
                    time.sleep(0.5)
            token = requests.get(f"{base}/auth/token", timeout=10)
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"} if token.ok else {}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium[0], args=["--no-sandbox"])
                try:
                    page = browser.new_page(viewport={"width": 1300, "height": 1600})
                    page.goto(f"{base}/connections")
                    page.get_by_text("Add Connection").first.click()
                    page.locator("input[role=combobox][aria-describedby$=placeholder]").last.click()
                    page.keyboard.type("IMKIT")
                    page.keyboard.press("Enter")
                    page.fill("input[name=connection_id]", "imkit_ui")
                    page.fill("input[name=host]", sandbox.url)
                    page.fill("input[name=password]", API_KEY)
                    standard: dict[str, Any] = page.evaluate(FIELDS_JS)
                    # The form is an accordion: opening the extra fields closes the standard ones.
                    standard_text = page.inner_text("[role=dialog]")
                    page.get_by_text("Extra Fields", exact=True).first.click()
                    page.wait_for_selector("input[name=element_verify]", state="attached")
                    extra: dict[str, Any] = page.evaluate(FIELDS_JS)
                    extra_text = page.inner_text("[role=dialog]")
                    page.get_by_role("button", name="Save").click()
                    page.wait_for_url("**/connections**")
                    deadline = time.monotonic() + 30
                    stored = requests.get(f"{base}/api/v2/connections/imkit_ui", headers=headers, timeout=10)
                    while stored.status_code == 404 and time.monotonic() < deadline:
                        time.sleep(0.3)
                        stored = requests.get(
                            f"{base}/api/v2/connections/imkit_ui", headers=headers, timeout=10
                        )

                    def press_test() -> tuple[int, str]:
                        page.goto(f"{base}/connections")
                        with page.expect_response(lambda r: r.url.endswith("/connections/test")) as answer:
                            page.locator("button[aria-label='Test Connection']").first.click()
                        return answer.value.status, answer.value.text()

                    portless = press_test()
                    patched = requests.patch(
                        f"{base}/api/v2/connections/imkit_ui",
                        params={"update_mask": "port"},
                        json={"connection_id": "imkit_ui", "conn_type": "imkit", "port": 443},
                        headers=headers,
                        timeout=10,
                    )
                    with_port = press_test()
                finally:
                    browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)

    # What the form shows: the standard fields relabelled, with placeholders; port, login and
    # schema hidden; the extras typed (numbers prefilled with their defaults, a choice with no
    # "null" in it, a checkbox for TLS checks, not a JSON box) and nothing misspelt.
    assert standard["host"]["placeholder"] == "https://<app>.imkit.io"
    assert standard["password"]["type"] == "password"
    assert {"port", "login", "schema"}.isdisjoint(standard)
    assert "Base URL" in standard_text and "API key" in standard_text
    assert "Verify TLS certificates" in extra_text and "null" not in extra_text
    assert extra["element_max_attempts"]["value"] == "3"
    assert extra["element_read_back_settle"]["value"] == "10"
    assert extra["element_on_ambiguous"]["value"] == ""  # no choice made: reads as reconcile
    assert extra["element_verify"]["type"] == "checkbox" and extra["element_verify"]["checked"]
    assert extra["element_proxy"]["placeholder"] and extra["element_ca_bundle"]["placeholder"]
    assert "element_retry_on_ambiguous" not in extra
    # What Save stores: the Base URL and key, and extras the hook reads as its defaults.
    assert stored.status_code == 200, stored.text
    saved = stored.json()
    assert saved["host"] == sandbox.url and saved["port"] is None
    assert json.loads(saved["extra"]) == {
        "timeout": None,
        "max_attempts": 3,
        "on_ambiguous": None,
        "read_back_settle": 10,
        "proxy": None,
        "verify": True,
        "ca_bundle": None,
    }
    # The Test button: Airflow 3.3.2 sends port 0 for a portless connection and refuses it
    # (400); with a port stored (the documented workaround) the hook's test runs and passes.
    if newest_version_has_port_zero_bug():
        assert portless[0] == 400 and "differs from the stored connection" in portless[1], portless
    else:
        assert portless[0] == 200 and '"status":true' in portless[1], portless
    assert patched.status_code == 200, patched.text
    assert with_port[0] == 200 and "the API key was accepted" in with_port[1], with_port
    assert API_KEY not in portless[1] + with_port[1]


def newest_version_has_port_zero_bug() -> bool:
    """Airflow 3.3.0 to 3.3.2 refuse the UI's port 0 (fixed by apache/airflow#73298)."""
    import airflow

    major, minor, patch = (int(part) for part in airflow.__version__.split(".")[:3])
    return (major, minor) == (3, 3) and patch <= 2
