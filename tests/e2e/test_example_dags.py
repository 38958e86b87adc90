"""Every example DAG runs in real Airflow against the sandbox and does what it says."""

from __future__ import annotations

import re

import pytest

from tests.conftest import API_KEY
from tests.e2e.conftest import ExampleRuns

# With pytest-xdist: every test on the session's example runs in one worker (run once).
pytestmark = pytest.mark.xdist_group("example_runs")


def test_every_dag_ends_as_planned(example_runs: ExampleRuns) -> None:
    for dag_id, expected in example_runs.plan["dags"].items():
        outcome = example_runs.outcomes[dag_id]
        assert outcome.succeeded is (expected == "success"), f"{dag_id}:\n{outcome.output[-4000:]}"


def test_api_key_in_no_task_log(example_runs: ExampleRuns) -> None:
    for dag_id, outcome in example_runs.outcomes.items():
        assert API_KEY not in outcome.output, dag_id
        if dag_id != "example_imkit_deployment_alerts":  # the one DAG with no IMKIT code
            assert "IMKIT message" in outcome.output  # the hook's INFO line is in the log


def test_send_message_dag_rooms(example_runs: ExampleRuns) -> None:
    # Other example DAGs post to these rooms too: take this DAG's messages (it runs first).
    pipeline = [m for m in example_runs.sandbox.received("data-pipeline") if m["sender"] == "airflow-bot"][:4]
    texts = [m["message"] for m in pipeline]
    assert len(texts) == 4
    assert re.fullmatch(
        r"Pipeline example_imkit_send_message started for 2026-01-02 \(run manual__\S+\)", texts[0]
    )
    assert texts[1] == "Loaded 1284 rows into the warehouse 📦 倉庫已更新"
    assert texts[2] == "Nightly data for 2026-01-02 is ready. No action needed."
    assert texts[3] == f"Pipeline example_imkit_send_message finished. First message id: {pipeline[0]['_id']}"
    assert pipeline[1]["mentions"] == ["alice", "bob"]
    assert (pipeline[2]["messageType"], pipeline[2]["push"]) == ("announcement", False)
    assert all(m["sender"] == "airflow-bot" for m in pipeline)
    for room in ("team-analytics", "team-finance", "team-marketing"):
        own = [m for m in example_runs.sandbox.received(room) if m["sender"] == "airflow-bot"]
        assert [m["message"] for m in own] == ["Fresh data for 2026-01-02 is available in your dashboards."]


def test_send_message_dag_xcoms_are_the_message_objects(example_runs: ExampleRuns) -> None:
    xcoms = example_runs.xcoms("example_imkit_send_message")
    pipeline = example_runs.sandbox.received("data-pipeline")[:4]
    assert [
        xcoms[(t, -1)]["_id"] for t in ("notify_start", "report_rows", "announce_quietly", "notify_end")
    ] == [m["_id"] for m in pipeline]
    mapped = {xcoms[("notify_teams", i)]["room"]: xcoms[("notify_teams", i)]["_id"] for i in range(3)}
    for room, message_id in mapped.items():
        assert example_runs.sandbox.received(room)[0]["_id"] == message_id
    assert xcoms[("extract", -1)] == 1284


def test_broadcast_dag(example_runs: ExampleRuns) -> None:
    sandbox = example_runs.sandbox
    sandbox.flush_batches()
    expected = {
        "team-analytics": "Analytics: 120",
        "team-finance": "Finance: 75",
        "team-marketing": "Marketing: 33",
    }
    for room, text in expected.items():
        batch = [m for m in sandbox.received(room) if m["sender"] == "release-bot"]
        assert [m["message"] for m in batch] == [
            f"Hello {text} new rows for 2026-01-02 are in your dashboards."
        ]
        assert batch[0]["push"] is False
    # The bot did not exist before the run: ensure_sender created it.
    assert "release-bot" not in example_runs.plan["users"]
    assert sandbox.user("release-bot")["nickname"] == "Release Bot"
    # The "running" notice was recalled, and its id came through XCom.
    (notice,) = [m for m in sandbox.received("data-pipeline") if m["sender"] == "release-bot"]
    assert (notice["messageType"], notice["message"]) == ("recall", "")
    xcoms = example_runs.xcoms("example_imkit_broadcast")
    assert xcoms[("announce_running", -1)]["_id"] == notice["_id"]
    assert xcoms[("recall_running", -1)]["messageType"] == "recall"
    assert xcoms[("broadcast", -1)]["count"] == 3


def test_approval_dag_approved(example_runs: ExampleRuns) -> None:
    """The finance lead approves in the room; publish runs, the tidy-up is skipped. (The
    rejected second run: scripts/demo.sh and tests/deployment.)"""
    said = [(m["sender"], m["message"]) for m in example_runs.sandbox.received("finance-approvals")]
    assert len(said) == 4, said
    question = said[0][1].splitlines()
    assert question[:3] == [
        "Publish the finance report for 2026-01-02?",
        "",
        "1284 rows, revenue EUR 48,210.",
    ]
    assert "1. Approve" in question and "Deciding: @alice" in question
    assert example_runs.sandbox.received("finance-approvals")[0]["mentions"] == ["alice"]
    question_id = example_runs.sandbox.received("finance-approvals")[0]["_id"]
    assert said[1:] == [
        ("alice", "Approve"),
        (
            "airflow-bot",
            'Approved by alice ("Approve"): Publish the finance report for 2026-01-02?\n'
            f"Question: {question_id}",
        ),
        ("airflow-bot", "Finance report for 2026-01-02 published (approved by alice)."),
    ]
    gate = example_runs.xcoms("example_imkit_approval")[("approval_gate", -1)]
    assert (gate["chosen"], gate["by"]) == ("Approve", "alice")


def test_partner_files_dag_waits_for_the_partners_bot(example_runs: ExampleRuns) -> None:
    said = [(m["sender"], m["message"]) for m in example_runs.sandbox.received("partner-drops")]
    assert said == [
        ("partner-bot", "files uploaded: 3 files in batch b-0102"),
        ("airflow-bot", "Ingested 3 files of batch b-0102 for 2026-01-02."),
    ]
    found = example_runs.xcoms("example_imkit_partner_files")[("wait_for_files", -1)]
    assert found["groups"] == {"count": "3", "batch": "b-0102"}
    assert found["message"]["sender"] == "partner-bot"
