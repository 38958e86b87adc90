"""Delivery across Airflow's lifecycle, in real Airflow (``dag.test()``) against the sandbox.

One test per case a user met: a task retry after a dropped connection, a notifier reused by
two tasks, native rendering, list fields from Variables and text, connection schemes, errors
that name their subject, and ``airflow connections test`` with misspelt extras.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_imkit.sandbox import ImkitSandbox
from airflow_provider_imkit.testing import airflow_bin, airflow_env, migrate
from airflow_provider_imkit.testing.dagrun import plain_text
from tests.conftest import API_KEY, ROOT

# With pytest-xdist: the module's DAG runs happen once, in one worker.
pytestmark = pytest.mark.xdist_group("delivery")

DAGS = Path(__file__).parent / "dags"
ROOMS = ["e2e-retry", "e2e-found", "e2e-alerts", "e2e-native", "e2e-mentions", "e2e-scheme", "e2e-places"]
USERS = ["bot", "alice", "bob"]
ORDER = [  # the DAGs that arm faults run first, each consuming its own
    "imkit_e2e_retry_after_drop",
    "imkit_e2e_read_back_found",
    "imkit_e2e_notifier_reuse",
    "imkit_e2e_native",
    "imkit_e2e_mentions",
    "imkit_e2e_scheme",
    "imkit_e2e_error_subjects",
    "imkit_e2e_callback_places",
]


@dataclass
class Runs:
    sandbox: ImkitSandbox
    home: Path
    env: dict[str, str]
    states: dict[str, str]
    logs: dict[str, str]

    def xcom(self, dag_id: str, task_id: str) -> Any:
        with sqlite3.connect(self.home / "airflow.db") as db:
            (value,) = db.execute(
                "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'",
                (dag_id, task_id),
            ).fetchone()
        return json.loads(value)

    def tries(self, dag_id: str, task_id: str) -> int:
        with sqlite3.connect(self.home / "airflow.db") as db:
            (try_number,) = db.execute(
                "SELECT try_number FROM task_instance WHERE dag_id = ? AND task_id = ?", (dag_id, task_id)
            ).fetchone()
        return int(try_number)


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    with (
        ImkitSandbox(api_key=API_KEY, rooms=ROOMS, users=USERS) as sandbox,
        tempfile.TemporaryDirectory(prefix="imkit-e2e-delivery-") as home,
    ):
        host = sandbox.url.removeprefix("http://")
        conns = {
            "AIRFLOW_CONN_IMKIT_DEFAULT": sandbox.connection_json(),
            "AIRFLOW_CONN_IMKIT_HTTP_URI": f"http://:{API_KEY}@{host}",
            "AIRFLOW_CONN_IMKIT_BARE_HOST": json.dumps(
                {"conn_type": "imkit", "host": host, "password": API_KEY}
            ),
            "AIRFLOW_CONN_IMKIT_WRONG_KEY": json.dumps(
                {"conn_type": "imkit", "host": sandbox.url, "password": "wrong-key-Zm9vYmFyYmF6"}
            ),
            "AIRFLOW_CONN_IMKIT_TYPOS": json.dumps(
                {
                    "conn_type": "imkit",
                    "host": sandbox.url,
                    "password": API_KEY,
                    "extra": {"timout": 5, "max_attemps": 2},
                }
            ),
            "AIRFLOW_VAR_ONCALL_USERS": '["alice", "bob"]',
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        }
        env = airflow_env(home, DAGS, conns)
        migrate(env)
        # One stream, in order (Airflow 3.0 writes task logs to stderr), without terminal styling.
        done = subprocess.run(
            [sys.executable, "-m", "tests.e2e.run_dags", *ORDER],
            env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
            check=False,
        )
        output = plain_text(done.stdout)
        assert done.returncode == 0, output[-5000:]
        states: dict[str, str] = {}
        logs: dict[str, str] = {}
        for chunk in re.split(r"^@@START ", output, flags=re.MULTILINE)[1:]:
            dag_id = chunk.split("\n", 1)[0].strip()
            logs[dag_id] = chunk
            result = re.search(r"^@@RESULT (.*)$", chunk, flags=re.MULTILINE)
            states[dag_id] = json.loads(result.group(1))["state"] if result else "?"
        yield Runs(sandbox, Path(home), env, states, logs)


def texts(runs: Runs, room: str) -> list[str]:
    return [m["message"] for m in runs.sandbox.received(room)]


def test_a_task_retry_never_posts_twice(runs: Runs) -> None:
    """1: stored, connection dropped, room unreadable: try 1 fails, try 2 reads back: one message."""
    assert runs.states["imkit_e2e_retry_after_drop"] == "success"
    assert texts(runs, "e2e-retry") == ["nightly load done"]
    assert runs.tries("imkit_e2e_retry_after_drop", "send") == 2
    assert (
        runs.xcom("imkit_e2e_retry_after_drop", "send")["_id"] == runs.sandbox.received("e2e-retry")[0]["_id"]
    )
    assert "already stored by an earlier try" in runs.logs["imkit_e2e_retry_after_drop"]


def test_a_dropped_send_is_recovered_from_the_room(runs: Runs) -> None:
    assert runs.states["imkit_e2e_read_back_found"] == "success"
    assert texts(runs, "e2e-found") == ["report ready"]
    assert runs.tries("imkit_e2e_read_back_found", "send") == 1
    assert (
        runs.xcom("imkit_e2e_read_back_found", "send")["_id"] == runs.sandbox.received("e2e-found")[0]["_id"]
    )
    assert "recovered the stored result from the read-back" in runs.logs["imkit_e2e_read_back_found"]


def test_one_notifier_for_two_tasks_names_each(runs: Runs) -> None:
    """2: the notifier renders into a copy per call, never into itself."""
    assert runs.states["imkit_e2e_notifier_reuse"] == "failed"
    assert sorted(texts(runs, "e2e-alerts")) == [
        "extract_orders failed in imkit_e2e_notifier_reuse",
        "extract_users failed in imkit_e2e_notifier_reuse",
    ]


def test_native_rendering_sends_numbers_as_text(runs: Runs) -> None:
    """3: render_template_as_native_obj=True: 1284 reaches the room from operator and notifier."""
    assert runs.states["imkit_e2e_native"] == "failed"  # publish fails on purpose
    assert texts(runs, "e2e-native") == ["1284", "1284"]


def test_list_fields_from_variables_and_text(runs: Runs) -> None:
    """4: '{{ var.json.oncall_users }}' and 'alice,bob' both mention alice and bob."""
    assert runs.states["imkit_e2e_mentions"] == "success"
    messages = runs.sandbox.received("e2e-mentions")
    assert [(m["message"], m["mentions"]) for m in messages] == [
        ("from a variable", ["alice", "bob"]),
        ("from text", ["alice", "bob"]),
        ("all done", ["alice", "bob"]),
    ]


def test_connection_scheme(runs: Runs) -> None:
    """5: http:// URIs are plain http; a bare host answering plain http fails fast with advice."""
    assert texts(runs, "e2e-scheme") == ["over http"]
    log = runs.logs["imkit_e2e_scheme"]
    assert "https was assumed" in log and "write http://" in log
    assert runs.tries("imkit_e2e_scheme", "bare_host") == 1, "a permanent error: no Airflow retries"


def test_errors_name_their_subject(runs: Runs) -> None:
    """6: the room, the sender and the connection are named in the task log."""
    log = runs.logs["imkit_e2e_error_subjects"]
    assert "ROOM_NOT_FOUND" in log and "[room 'no-such-room']" in log
    assert "CLIENT_NOT_FOUND" in log and "[sender 'ghost-user']" in log
    assert "INVALID_API_KEY" in log and "[connection 'imkit_wrong_key']" in log
    assert API_KEY not in "".join(runs.logs.values())


def airflow_cli(runs: Runs, *args: str) -> str:
    done = subprocess.run(
        [airflow_bin(), *args], env=runs.env, capture_output=True, text=True, timeout=300, check=False
    )
    return done.stdout + done.stderr


def test_connections_test_rejects_misspelt_extras(runs: Runs) -> None:
    """7: `airflow connections test` fails naming the unknown extras and the known ones."""
    output = airflow_cli(runs, "connections", "test", "imkit_typos")
    assert "Connection success!" not in output
    assert "max_attemps" in output and "timout" in output and "known extras: timeout" in output
    bare = airflow_cli(runs, "connections", "test", "imkit_bare_host")
    assert "https was assumed" in bare and "CA bundle" not in bare


def test_each_callback_place_says_what_happened(runs: Runs) -> None:
    """A default-text notifier at every callback place, in real Airflow (issue: an
    on_execute_callback said "finished" when the task was only starting)."""
    assert runs.states["imkit_e2e_callback_places"] == "failed"
    headlines = sorted(text.splitlines()[0] for text in texts(runs, "e2e-places"))
    dag = "imkit_e2e_callback_places"
    assert headlines == sorted(
        [
            f"▶️ Airflow task {dag}.starts_and_succeeds started",
            f"✅ Airflow task {dag}.starts_and_succeeds succeeded",
            f"🔁 Airflow task {dag}.fails_once failed and will be retried",
            f"✅ Airflow task {dag}.fails_once succeeded",
            f"⏭️ Airflow task {dag}.skips skipped",
            f"❌ Airflow task {dag}.fails failed",
            f"❌ Airflow DAG {dag} run failed",
        ]
    )
