"""The sandbox's inbox page in a real headless Chromium (Debian's package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from airflow_provider_imkit.sandbox import ImkitSandbox
from airflow_provider_imkit.testing import airflow_env, migrate
from tests.conftest import API_KEY, ROOT, not_the_primary_pass
from tests.deployment.harness.servers import wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

# One group: the approval DAG run and the two Chromium sessions share one worker.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def chromium(tmp_path: Path) -> list[str]:
    if CHROMIUM is None:
        if os.environ.get("IMKIT_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (IMKIT_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]


def test_inbox_renders_messages_as_text(chromium: list[str], tmp_path: Path) -> None:
    hostile = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
    with ImkitSandbox(api_key=API_KEY, rooms=["ops"], users=["bot", "alice"]) as sandbox:
        for text, mentions in ((hostile, []), ("部署完成 ✅ deploy done", ["alice"])):
            body = {
                "room": "ops",
                "sender": "bot",
                "message": text,
                "messageType": "text",
                "mentions": mentions,
            }
            response = requests.post(
                sandbox.url + "/messages", headers={"IM-API-KEY": API_KEY}, json=body, timeout=5
            )
            assert response.status_code == 200
        page = [*chromium, "--dump-dom", sandbox.url + "/"]
        dom = subprocess.run(page, capture_output=True, text=True, timeout=60, check=True).stdout
        artifacts = ROOT / ".artifacts"
        artifacts.mkdir(exist_ok=True)
        shot = artifacts / "inbox.png"
        subprocess.run(
            [*chromium, f"--screenshot={shot}", "--window-size=1200,700", sandbox.url + "/"],
            capture_output=True,
            timeout=60,
            check=True,
        )
    # The hostile text is shown as text: escaped in the DOM, the title untouched, no <img> made.
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert "<title>IMKIT sandbox inbox</title>" in dom
    assert "<img" not in dom
    assert "部署完成 ✅ deploy done" in dom
    assert '<span class="mention">@alice</span>' in dom
    assert shot.stat().st_size > 10_000  # a real rendering, not an empty page


def test_an_approval_waits_for_a_reply_typed_in_the_page(chromium: list[str]) -> None:
    """A real DAG run (dag.test in a child process) waits on its approval gate until a
    person picks the room and user in the inbox page, types "Approve" and presses Send."""
    from playwright.sync_api import sync_playwright

    elsewhere = not_the_primary_pass()
    if elsewhere is not None:
        pytest.skip(
            f"the page is the sandbox's, the same on every Airflow: typed into once, {elsewhere};"
            " the approval wait itself runs on every version in tests/e2e/test_approval.py"
        )

    room = "appr-browser"
    with (
        ImkitSandbox(api_key=API_KEY, rooms=[room], users=["bot", "alice", "bob"]) as sandbox,
        tempfile.TemporaryDirectory(prefix="imkit-browser-airflow-") as home,
    ):
        env = airflow_env(
            home,
            ROOT / "tests" / "e2e" / "approval_dags",
            {"AIRFLOW_CONN_IMKIT_DEFAULT": sandbox.connection_json()},
        )
        migrate(env)
        run = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.run_dags", "imkit_e2e_browser"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for(lambda: len(sandbox.received(room)) == 1, "the approval question", timeout=180)
            time.sleep(1)  # the run is now waiting on the room (nothing has answered)
            assert run.poll() is None and len(sandbox.received(room)) == 1
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium[0], args=["--no-sandbox"])
                try:
                    page = browser.new_page()
                    page.goto(sandbox.url + "/")
                    assert "Publish 1284 rows" in page.inner_text(f"#room-{room} + table")
                    page.select_option("#reply-room", room)
                    page.select_option("#reply-user", "alice")
                    page.fill("#reply-message", "Approve")
                    page.click("#reply-send")
                    page.wait_for_url("**/?room=appr-browser&user=alice*")
                    assert page.input_value("#reply-user") == "alice"
                finally:
                    browser.close()
            output, _ = run.communicate(timeout=180)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
        assert '"state": "success"' in output, output[-3000:]
        said = [(m["sender"], m["message"]) for m in sandbox.received(room)]
        assert said[1] == ("alice", "Approve")
        assert said[2][1].startswith('Approved by alice ("Approve")')
        assert said[3] == ("bot", "published")
