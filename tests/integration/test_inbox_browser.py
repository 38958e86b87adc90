"""The sandbox's inbox page in a real headless Chromium (Debian's package)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from airflow_provider_imkit.sandbox import ImkitSandbox
from tests.conftest import API_KEY, ROOT

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

pytestmark = pytest.mark.browser


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
