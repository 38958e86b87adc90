"""The provider on a real deployment: CeleryExecutor, Postgres, Redis, every component its own
process, the connection in the metadata database (no AIRFLOW_CONN_* anywhere)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import API_KEY
from tests.deployment.conftest import Deployed
from tests.deployment.dags.deployment_cases import TOKENS
from tests.deployment.harness.chat import BOT, COMMAND_DAG, ROOM, TARGET_DAG, run_id_for

# With pytest-xdist: the deployment starts once, in one worker.
pytestmark = pytest.mark.xdist_group("deployment")


def texts(deployed: Deployed, room: str, sender: str | None = None) -> list[str]:
    return [m["message"] for m in deployed.sandbox.received(room) if sender is None or m["sender"] == sender]


def components(deployed: Deployed) -> dict[str, str]:
    """Message id -> the Airflow component that sent it (from the provider's User-Agent)."""
    found = {}
    for request in deployed.sandbox.requests():
        match = re.search(r"\(airflow ([^)]+)\)", request.get("user_agent") or "")
        if request["result_id"] and match:
            found[request["result_id"]] = match.group(1)
    return found


def test_every_dag_ends_as_planned(deployed: Deployed) -> None:
    for dag_id, expected in deployed.plan.items():
        if dag_id == "example_imkit_deployment_alerts":
            expected = "failed"  # triggered with {"fail": true} first
        assert deployed.states[dag_id] == expected, dag_id
    assert deployed.states["deploy_retry_after_drop"] == "success"
    assert deployed.states["deploy_mapped_sends"] == "success"
    assert deployed.states["deploy_deadline_alert"] == "success"
    assert deployed.states["example_imkit_deployment_alerts (recovery)"] == "success"


def test_example_rooms_hold_exactly_what_the_dags_sent(deployed: Deployed) -> None:
    pipeline = texts(deployed, "data-pipeline", "airflow-bot")
    starts = [
        t for t in pipeline if t.startswith("Pipeline example_imkit_send_message started for 2026-01-02")
    ]
    assert len(starts) == 1
    assert pipeline.count("Loaded 1284 rows into the warehouse 📦 倉庫已更新") == 1
    assert pipeline.count("Nightly data for 2026-01-02 is ready. No action needed.") == 1
    assert (
        pipeline.count(
            "✅ Daily pipeline example_imkit_success_summary done for 2026-01-02: all tasks succeeded."
        )
        == 1
    )
    assert len([t for t in pipeline if t.startswith("Pipeline example_imkit_send_message finished.")]) == 1
    assert len(pipeline) == 5
    for room, team in (
        ("team-analytics", "Analytics: 120"),
        ("team-finance", "Finance: 75"),
        ("team-marketing", "Marketing: 33"),
    ):
        assert sorted(texts(deployed, room)) == sorted(
            [
                "Fresh data for 2026-01-02 is available in your dashboards.",
                f"Hello {team} new rows for 2026-01-02 are in your dashboards.",
            ]
        )
    (recalled,) = [m for m in deployed.sandbox.received("data-pipeline") if m["sender"] == "release-bot"]
    assert recalled["messageType"] == "recall"
    alerts = texts(deployed, "data-alerts")
    assert len(alerts) == 2
    assert (
        sum(t.startswith("❌ Airflow task example_imkit_failure_alert.load_warehouse failed") for t in alerts)
        == 1
    )
    assert sum(t.startswith("❌ Airflow DAG example_imkit_failure_alert run failed") for t in alerts) == 1
    task_alert = next(t for t in alerts if t.startswith("❌ Airflow task"))
    assert "Error: RuntimeError: warehouse rejected 42 rows" in task_alert  # a real worker passes it


def test_each_callback_kind_runs_where_airflow_says(deployed: Deployed) -> None:
    sent_by = components(deployed)
    alerts = {m["message"].splitlines()[0]: m["_id"] for m in deployed.sandbox.received("data-alerts")}
    task_alert = next(i for line, i in alerts.items() if line.startswith("❌ Airflow task"))
    dag_alert = next(i for line, i in alerts.items() if line.startswith("❌ Airflow DAG"))
    assert sent_by[task_alert] == "celery worker"
    assert sent_by[dag_alert] == "dag-processor"
    (deadline,) = deployed.sandbox.received("deploy-deadline")
    assert deadline["message"].startswith("⏰ Airflow DAG deploy_deadline_alert run missed its deadline")
    assert (deadline["mentions"], deadline["push"], deadline["skipTotalBadge"]) == (["alice"], False, True)
    assert sent_by[deadline["_id"]] == "triggerer"


def test_a_dropped_send_retried_by_celery_is_stored_once(deployed: Deployed) -> None:
    (stored,) = deployed.sandbox.received("deploy-retry")
    assert stored["message"] == "loaded once"
    run_id = deployed.runs["deploy_retry_after_drop"]
    path = f"/api/v2/dags/deploy_retry_after_drop/dagRuns/{run_id}/taskInstances/send"
    assert deployed.deployment.api("GET", path)["try_number"] == 2
    xcom = deployed.deployment.api("GET", f"{path}/xcomEntries/return_value")["value"]
    assert (xcom if isinstance(xcom, dict) else eval(xcom))["_id"] == stored["_id"]


def test_forty_mapped_sends_through_a_pool(deployed: Deployed) -> None:
    got = texts(deployed, "deploy-load")
    assert sorted(got) == TOKENS, "0 lost, 0 doubled"
    run_id = deployed.runs["deploy_mapped_sends"]
    tis = deployed.deployment.task_instances("deploy_mapped_sends", run_id)
    assert len(tis) == 40 and {ti["state"] for ti in tis} == {"success"}
    assert {ti["pool"] for ti in tis} == {"imkit"}


def test_the_api_key_is_in_no_log_and_no_table(deployed: Deployed) -> None:
    logs = list(deployed.deployment.log_files())
    assert len(logs) > 50, "component and task logs were written"
    for path in logs:
        assert API_KEY not in path.read_text(errors="replace"), path
    dump = deployed.deployment.dump_database()
    assert "imkit_default" in dump and API_KEY not in dump


def test_deployment_wide_alerts_with_no_notifier(deployed: Deployed) -> None:
    """Only AIRFLOW__IMKIT__ALERTS_ROOM and _SENDER set: one grouped alert for four failed mapped
    tasks (from the scheduler), one recovery, one import error (from the DAG processor)."""
    sent_by = components(deployed)
    alerts = [
        m
        for m in deployed.sandbox.received("ops-alerts")
        if "example_imkit_deployment_alerts" in m["message"]
    ]
    texts = [m["message"] for m in alerts]
    assert len(alerts) == 2, texts
    failed, recovered = alerts
    assert failed["message"].startswith(
        "❌ Airflow DAG example_imkit_deployment_alerts run failed: 4 tasks failed"
    )
    assert (
        "Failed: load_partition[0], load_partition[1], load_partition[2], load_partition[3]"
        in failed["message"]
    )
    assert "First error: RuntimeError: partition " in failed["message"]
    assert recovered["message"].startswith(
        "✅ Airflow DAG example_imkit_deployment_alerts recovered after 1 failed run"
    )
    assert sent_by[failed["_id"]] == sent_by[recovered["_id"]] == "scheduler"
    imports = [m for m in deployed.sandbox.received("ops-alerts") if "broken_dag.py" in m["message"]]
    assert len(imports) == 1 and imports[0]["message"].startswith(
        "⚠️ DAG file broken_dag.py cannot be imported"
    )
    assert sent_by[imports[0]["_id"]] == "dag-processor"
    assert all(m["sender"] == "airflow-bot" for m in deployed.sandbox.received("ops-alerts"))


def test_an_approval_waits_in_the_triggerer_and_goes_both_ways(deployed: Deployed) -> None:
    """example_imkit_approval on Celery: the question from the worker, the wait in the
    triggerer (no worker slot held), the decision and what follows from the worker."""
    assert deployed.states["example_imkit_approval@2026-01-03"] == "success"
    said = [(m["sender"], m["message"]) for m in deployed.sandbox.received("finance-approvals")]
    assert sorted(text for _, text in said if text.startswith("Finance report")) == [
        "Finance report for 2026-01-02 published (approved by alice).",
        "Finance report for 2026-01-03 not published; the draft stays in the staging area.",
    ]
    assert [text for _, text in said if text.startswith(("Approved", "Rejected"))] != []
    assert sum(text.startswith("Publish the finance report for") for _, text in said) == 2  # asked once each
    readers = {
        re.search(r"\(airflow ([^)]+)\)", r.get("user_agent") or "").group(1)  # type: ignore[union-attr]
        for r in deployed.sandbox.requests()
        if r["method"] == "GET" and r["path"] == "/rooms/finance-approvals/messages/v3"
    }
    assert readers == {"triggerer"}
    sent_by = components(deployed)
    senders = {
        sent_by.get(m["_id"])
        for m in deployed.sandbox.received("finance-approvals")
        if m["sender"] != "alice"
    }
    assert senders == {"celery worker"}


def test_a_hitl_request_is_posted_in_the_room_and_answered_in_airflow(deployed: Deployed) -> None:
    assert deployed.states["deploy_hitl_in_room"] == "success"
    request, done = deployed.sandbox.received("deploy-hitl")
    lines = request["message"].splitlines()
    assert lines[0] == "Input needed: Backfill 30 days before 2026-01-02?"
    assert "It re-reads 30 partitions (about 2 hours)." in lines
    assert "1. Approve" in lines and "2. Reject" in lines
    assert "Asked: @alice, @Anonymous" in lines
    assert request["mentions"] == ["alice", "Anonymous"]
    (link,) = [line for line in lines if line.startswith("Answer in Airflow")]
    assert "/dags/deploy_hitl_in_room/runs/" in link and link.endswith("required_actions?map_index=-1")
    assert components(deployed)[request["_id"]] == "celery worker"
    assert done["message"] == "backfill started"


def test_a_chat_command_starts_its_run_and_is_answered_once_across_a_triggerer_restart(
    deployed: Deployed,
) -> None:
    """Typed in the inbox page: an allowed person's command starts the run and is answered with
    its id; a DAG off the allow-list is refused; a command typed while the triggerer was down
    is read after it starts again (3.3's asset state store keeps the watcher's cursor), and no
    command fires twice."""
    started, refused, late = deployed.chat
    assert started.answer == f"Started {TARGET_DAG} run {run_id_for(started.message)} (asked by alice)."
    assert refused.answer is not None and refused.answer.startswith(
        "Not started: example_imkit_send_message is not one of example_imkit_sales_daily (asked by bob"
    )
    assert late.answer == f"Started {TARGET_DAG} run {run_id_for(late.message)} (asked by alice)."
    assert started.run_state == late.run_state == "success"
    api = deployed.deployment.api
    target_runs = api("GET", f"/api/v2/dags/{TARGET_DAG}/dagRuns?limit=100")["dag_runs"]
    assert sorted(r["dag_run_id"] for r in target_runs) == sorted([str(started.run_id), str(late.run_id)])
    by_id = {r["dag_run_id"]: r for r in target_runs}
    assert by_id[started.run_id]["logical_date"].startswith("2026-11-30T00:00:00")
    said = [m["message"] for m in deployed.sandbox.received(ROOM) if m["sender"] == BOT]
    answers = [t for t in said if not t.startswith("Sales for ")]
    assert len(answers) == 3, said  # one answer per command: nothing fired twice
    assert sorted(t for t in said if t.startswith("Sales for ")) == sorted(
        [
            f"Sales for 2026-11-30 rebuilt (run {started.run_id}).",
            next(t for t in said if late.run_id in t and t.startswith("Sales")),
        ]
    )
    events = api("GET", "/api/v2/assets/events?limit=100")["asset_events"]
    assert len([e for e in events if e.get("asset_uri", e.get("uri")) == f"imkit://{ROOM}/rerun"]) == 3
    command_runs = api("GET", f"/api/v2/dags/{COMMAND_DAG}/dagRuns?limit=100")["dag_runs"]
    assert {r["state"] for r in command_runs} == {"success"}
    readers = {
        re.search(r"\(airflow ([^)]+)\)", r.get("user_agent") or "").group(1)  # type: ignore[union-attr]
        for r in deployed.sandbox.requests()
        if r["method"] == "GET" and r["path"] == f"/rooms/{ROOM}/messages/v3"
    }
    assert readers == {"triggerer"}
