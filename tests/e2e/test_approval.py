"""Waits on rooms in real Airflow (``dag.test()``, triggers run inline) against the sandbox.
Approvals: approve, reject (downstream skipped), reject with fail_on_reject, timeout with and
without a default, a non-approver ignored; the approvers are scripted sandbox users who answer
each question. The message sensor, deferred and in the worker: only an allowed sender's message
created after the sensor started counts, its XCom, soft_fail on timeout, templated fields."""

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
from airflow_provider_imkit.testing import airflow_env, migrate
from tests.conftest import API_KEY, ROOT

pytestmark = pytest.mark.xdist_group("approval")

DAGS = Path(__file__).parent / "approval_dags"
BASE_URL = "http://airflow.example:8080"
REPLIES = [  # (room, user, text), queued before the runs: each answers its room's question
    ("appr-yes", "alice", "  approve "),
    ("appr-no", "bob", "2"),
    ("appr-fail", "alice", "Reject"),
    ("appr-who", "mallory", "Ship it"),  # not an approver: ignored
    ("appr-who", "bob", "1"),  # an approver elsewhere, not here: ignored
    ("appr-who", "alice", "maybe later"),  # chatter: ignored
    ("appr-who", "alice", "hold"),
]
#: (room, user, text): posted right after the room's first read (the sensor's first poke).
ON_READ = [
    ("sense-deferred", "mallory", "files uploaded: 7"),  # not an allowed sender
    ("sense-deferred", "partner-bot", "files uploaded: 3"),
    ("sense-worker", "bob", "files uploaded: 9"),
    ("sense-worker", "partner-bot", "no files today"),  # does not match
    ("sense-worker", "partner-bot", "files uploaded: 4"),
    ("sense-templated", "mallory", "go"),
    ("sense-templated", "bob", "go"),
]
SENSORS = [
    "imkit_e2e_sensor_deferred",
    "imkit_e2e_sensor_in_worker",
    "imkit_e2e_sensor_soft_fail",
    "imkit_e2e_sensor_templated",
]
ORDER = [
    *SENSORS,
    "imkit_e2e_approve",
    "imkit_e2e_reject",
    "imkit_e2e_reject_fails",
    "imkit_e2e_timeout_default",
    "imkit_e2e_timeout_fails",
    "imkit_e2e_non_approver",
]


@dataclass
class Runs:
    sandbox: ImkitSandbox
    home: Path
    states: dict[str, str]
    output: str

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return list(db.execute(sql, args).fetchall())

    def xcom(self, dag_id: str, task_id: str) -> Any:
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'",
            dag_id,
            task_id,
        )
        assert rows, f"no XCom from {dag_id}.{task_id}"
        value = json.loads(rows[0][0])
        return json.loads(value) if isinstance(value, str) else value  # Airflow 2 stores it as text

    def task_states(self, dag_id: str) -> dict[str, tuple[str, int]]:
        rows = self.query("SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", dag_id)
        return {task_id: (state, tries) for task_id, state, tries in rows}

    def room(self, room: str) -> list[tuple[str, str]]:
        return [(m["sender"], m["message"]) for m in self.sandbox.received(room)]


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    rooms = sorted({room for room, _, _ in REPLIES + ON_READ} | {"appr-late", "appr-never", "sense-quiet"})
    users = ["bot", "alice", "bob", "mallory", "partner-bot"]
    with (
        ImkitSandbox(api_key=API_KEY, rooms=rooms, users=users) as sandbox,
        tempfile.TemporaryDirectory(prefix="imkit-e2e-approval-") as home,
    ):
        for room, user, text in REPLIES:
            sandbox.auto_reply(room, user, text)
        for room, user, text in ON_READ:
            sandbox.auto_reply(room, user, text, on_read=True)
        for room in ("sense-deferred", "sense-worker"):  # from before the sensors: never counts
            sandbox.post_as("partner-bot", room, "files uploaded: 1")
        env = airflow_env(
            home,
            DAGS,
            {
                "AIRFLOW_CONN_IMKIT_DEFAULT": sandbox.connection_json(),
                "AIRFLOW__API__BASE_URL": BASE_URL,
                "AIRFLOW__WEBSERVER__BASE_URL": BASE_URL,
            },
        )
        migrate(env)
        done = subprocess.run(
            [sys.executable, "-m", "tests.e2e.run_dags", *ORDER],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-5000:]
        states = {
            result["dag_id"]: result["state"]
            for result in map(json.loads, re.findall(r"^@@RESULT (.*)$", done.stdout, flags=re.MULTILINE))
        }
        yield Runs(sandbox, Path(home), states, output)
        sandbox.check()


def test_approve_goes_on_and_acknowledges(runs: Runs) -> None:
    assert runs.states["imkit_e2e_approve"] == "success"
    (_, question), reply, ack, publish = runs.room("appr-yes")
    lines = question.splitlines()
    assert re.fullmatch(r"Publish 1284 rows for \d{4}-\d\d-\d\d\?", lines[0])
    assert lines[2].startswith("Run ") and "1. Approve" in lines and "2. Reject" in lines
    assert "Reply with an option's name or number." in lines and "Deciding: @alice, @bob" in lines
    assert "Waiting up to 1 day for an answer." in lines
    (link,) = [line for line in lines if line.startswith("Task: ")]
    assert link.startswith(f"Task: {BASE_URL}/dags/imkit_e2e_approve") and "try_number" not in link
    assert runs.sandbox.received("appr-yes")[0]["mentions"] == ["alice", "bob"]
    assert reply == ("alice", "  approve ")
    assert ack[0] == "bot" and ack[1].startswith('Approved by alice ("Approve"): Publish 1284 rows')
    assert publish == ("bot", "published")
    xcom = runs.xcom("imkit_e2e_approve", "gate")
    stored_reply = runs.sandbox.received("appr-yes")[1]
    assert xcom == {
        "chosen": "Approve", "by": "alice", "message_id": stored_reply["_id"],
        "at_ms": stored_reply["createdAtMS"],
    }  # fmt: skip
    tasks = runs.task_states("imkit_e2e_approve")
    assert tasks["publish"][0] == "success" and tasks["tidy"][0] == "skipped"


def test_reject_skips_downstream_and_keeps_the_xcom(runs: Runs) -> None:
    assert runs.states["imkit_e2e_reject"] == "success"
    texts = [text for _, text in runs.room("appr-no")]
    assert texts[1] == "2" and texts[2].startswith('Rejected by bob ("Reject")')
    assert texts[3:] == ["not published"]  # the tidy-up ran, publish did not
    tasks = runs.task_states("imkit_e2e_reject")
    assert (
        tasks["gate"][0] == "success" and tasks["publish"][0] == "skipped" and tasks["tidy"][0] == "success"
    )
    assert runs.xcom("imkit_e2e_reject", "gate")["chosen"] == "Reject"


def test_reject_with_fail_on_reject_fails_without_retries(runs: Runs) -> None:
    # (The run itself ends by its leaf, the all_skipped tidy task, so it is not "failed".)
    tasks = runs.task_states("imkit_e2e_reject_fails")
    assert tasks["gate"] == ("failed", 1)  # retries=2, yet one try: a decision is not retried
    assert tasks["publish"][0] == "upstream_failed"
    texts = [text for _, text in runs.room("appr-fail")]
    assert len(texts) == 3 and texts[2].startswith('Rejected by alice ("Reject")')


def test_timeout_with_a_default_decides_and_tells_the_room(runs: Runs) -> None:
    assert runs.states["imkit_e2e_timeout_default"] == "success"
    question, told, tidy = (text for _, text in runs.room("appr-late"))
    assert "Waiting up to 1 second" in question
    assert told.startswith("No answer within 1 second to: Publish") and '"Reject"' in told
    assert tidy == "not published"
    xcom = runs.xcom("imkit_e2e_timeout_default", "gate")
    assert (xcom["chosen"], xcom["by"], xcom["message_id"]) == ("Reject", None, None)
    assert runs.task_states("imkit_e2e_timeout_default")["publish"][0] == "skipped"


def test_timeout_without_a_default_fails_and_tells_the_room(runs: Runs) -> None:
    assert runs.task_states("imkit_e2e_timeout_fails")["gate"] == ("failed", 1)
    texts = [text for _, text in runs.room("appr-never")]
    assert len(texts) == 2 and "The task fails; nothing goes ahead." in texts[1]


def test_only_an_approvers_option_counts(runs: Runs) -> None:
    assert runs.states["imkit_e2e_non_approver"] == "success"
    room = runs.room("appr-who")
    assert room[1:5] == [
        ("mallory", "Ship it"), ("bob", "1"), ("alice", "maybe later"), ("alice", "hold"),
    ]  # fmt: skip
    assert room[5][1].startswith('Rejected by alice ("Hold")')
    xcom = runs.xcom("imkit_e2e_non_approver", "gate")
    assert (xcom["chosen"], xcom["by"]) == ("Hold", "alice")


def test_no_key_in_the_output(runs: Runs) -> None:
    assert API_KEY not in runs.output


# -- the message sensor ----------------------------------------------------------------------


def test_the_deferred_sensor_takes_only_the_allowed_senders_new_message(runs: Runs) -> None:
    assert runs.states["imkit_e2e_sensor_deferred"] == "success"
    found = runs.sandbox.received("sense-deferred")[-1]
    xcom = runs.xcom("imkit_e2e_sensor_deferred", "wait")
    assert xcom == {
        "message": {
            "_id": found["_id"], "room": "sense-deferred", "message": "files uploaded: 3",
            "messageType": "text", "sender": "partner-bot", "createdAtMS": found["createdAtMS"],
        },
        "groups": {"count": "3"},
    }  # fmt: skip
    assert runs.xcom("imkit_e2e_sensor_deferred", "echo") == {
        "sender": "partner-bot",
        "groups": {"count": "3"},
    }


def test_the_sensor_in_the_worker_waits_the_same_way(runs: Runs) -> None:
    assert runs.states["imkit_e2e_sensor_in_worker"] == "success"
    assert runs.xcom("imkit_e2e_sensor_in_worker", "echo") == {
        "sender": "partner-bot",
        "groups": {"count": "4"},
    }
    assert runs.task_states("imkit_e2e_sensor_in_worker")["wait"] == ("success", 1)


def test_a_sensor_that_hears_nothing_times_out_and_soft_fail_skips(runs: Runs) -> None:
    assert runs.task_states("imkit_e2e_sensor_soft_fail")["wait"][0] == "skipped"
    assert runs.sandbox.received("sense-quiet") == []


def test_templated_room_senders_and_pattern_are_rendered(runs: Runs) -> None:
    assert runs.states["imkit_e2e_sensor_templated"] == "success"
    assert runs.xcom("imkit_e2e_sensor_templated", "echo") == {"sender": "bob", "groups": {}}
