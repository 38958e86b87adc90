"""Test-wide setup: an isolated Airflow home, created before Airflow is imported."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = ROOT / "example_dags"

# Airflow reads its configuration on first import: point it at a throwaway home first.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="imkit-tests-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.pop("AIRFLOW_CONN_IMKIT_DEFAULT", None)


def newest_airflow() -> str | None:
    """The newest Airflow CI proves (scripts/airflow-versions.sh), when this process runs
    another one; None when it runs the newest. For tests CI runs on the newest only."""
    import subprocess

    import airflow

    newest = subprocess.run(
        [ROOT / "scripts" / "airflow-versions.sh", "newest"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return None if airflow.__version__ == newest else newest


#: The Python of CI's first pass; the newest Airflow also runs under 3.12 and 3.13.
PRIMARY_PYTHON = (3, 11)


def not_the_primary_pass() -> str | None:
    """Why this is not CI's first pass (newest Airflow, Python 3.11), or None when it is. The
    minutes-long tests (the deployment, the browser sessions) are proven there once; the
    Postgres wheels of the deployment have no Python 3.13 build."""
    import sys

    newest = newest_airflow()
    if newest is not None:
        return f"proven on Airflow {newest} only (CI budget)"
    if sys.version_info[:2] != PRIMARY_PYTHON:
        return "proven under Python 3.11 only (CI budget)"
    return None


#: A realistic key: Airflow's secret masker ignores secrets shorter than 5 characters.
API_KEY = "dGVzdC1wbGF0Zm9ybS1rZXktOTk4ODc3"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def sleeps() -> list[float]:
    """A list that a fake ``sleep`` appends to: retry tests never really wait."""
    return []


class FakeTime:
    """A clock that only the fake ``sleep`` moves on: retry and read-back tests (the settle
    window, backoffs) never really wait, and what they waited is in ``sleeps``."""

    def __init__(self, sleeps: list[float]) -> None:
        self.now = 1_800_000_000.0
        self.sleeps = sleeps

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@pytest.fixture
def fake_time(sleeps: list[float]) -> FakeTime:
    return FakeTime(sleeps)


@pytest.fixture
def fake_sleep(fake_time: FakeTime) -> Callable[[float], None]:
    return fake_time.sleep


@pytest.fixture
def fake_client_time(fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """Every IMKIT client built without its own ``sleep``/``clock`` (the operators', the
    notifier's, the plugin's) waits on ``fake_time``: read-back settle windows and backoffs
    pass at once, and ``fake_time.sleeps`` shows what was waited."""
    from airflow_provider_imkit.client import base as client

    monkeypatch.setattr(client, "DEFAULT_SLEEP", fake_time.sleep)
    monkeypatch.setattr(client, "DEFAULT_CLOCK", fake_time.clock)
    return fake_time


@pytest.fixture
def fast_loop() -> Iterator[Callable[[Coroutine[Any, Any, T]], T]]:
    """Run a coroutine in an event loop whose time only moves when everything in it waits
    (looptime): the shared room readers' naps and budget slots pass at once, in order, while
    their reads (threads, real HTTP) take no loop time. The loop starts at 0 s; a test stuck
    waiting fails instead of hanging. The readers' thread pool is shut down afterwards."""
    import asyncio

    import looptime

    from airflow_provider_imkit.rooms import readers

    def run(main: Coroutine[Any, Any, T]) -> T:
        def new_loop() -> asyncio.AbstractEventLoop:
            return looptime.new_event_loop(start=0.0, end=1_000_000.0, idle_timeout=10.0)

        with asyncio.Runner(loop_factory=new_loop) as runner:
            return runner.run(main)

    yield run
    readers.shutdown_pool()


@pytest.fixture
def conn_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set ``AIRFLOW_CONN_<ID>`` from keyword fields: ``conn_env("imkit_default", host=...)``."""

    def set_conn(conn_id: str = "imkit_default", **fields: object) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "imkit", **fields}))

    return set_conn
