"""The notifier's text for Airflow's human-in-the-loop requests (3.1+), built from a real
HITL operator; the end-to-end proof (worker, REST answer) is in tests/deployment."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from airflow_provider_imkit.notifications.hitl_message import hitl_request
from airflow_provider_imkit.version_compat import AIRFLOW_V_3_1_PLUS

pytestmark = pytest.mark.skipif(
    not AIRFLOW_V_3_1_PLUS, reason="human-in-the-loop operators exist from Airflow 3.1"
)


def hitl_context(state: str = "running", **operator: Any) -> dict[str, Any]:
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    with DAG("hitl_dag", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), schedule=None):
        task = ApprovalOperator(task_id="gate", subject="Backfill 30 days?", **operator)
    ti = SimpleNamespace(dag_id="hitl_dag", run_id="manual__1", task_id="gate", map_index=-1, state=state)
    return {"task": task, "ti": ti, "task_instance": ti}


def test_the_request_names_everything_and_mentions_the_assigned_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    context = hitl_context(
        body="It re-reads 30 partitions.",
        assigned_users=[{"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}],
        defaults=["Reject"],
    )
    # Where the standard provider records the request's timeout (newer ones; 3.1's has none).
    extra = getattr(context["task"], "hitl_summary_extra", None)
    if extra is not None:
        extra["timeout_datetime"] = "2026-01-02T08:00:00+00:00"
    request = hitl_request(context)
    assert request is not None
    assert request.mentions == ["alice", "bob"]
    assert request.text.splitlines() == [
        "Input needed: Backfill 30 days?",
        "",
        "It re-reads 30 partitions.",
        "",
        "1. Approve",
        "2. Reject",
        *(["If nobody answers by 2026-01-02T08:00:00+00:00, Reject is chosen."] if extra is not None else []),
        "Asked: @alice, @bob",
        "Answer in Airflow: https://airflow.example.com/dags/hitl_dag/runs/manual__1/tasks/gate/required_actions?map_index=-1",
    ]


def test_without_a_base_url_the_request_says_where_to_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    request = hitl_request(hitl_context())
    assert request is not None and request.mentions == []
    assert request.text.splitlines()[-1] == "Answer in Airflow: the task's Required Actions."


@pytest.mark.parametrize("state", ["failed", "success", "up_for_retry"])
def test_callbacks_of_a_hitl_task_get_the_usual_alert(state: str) -> None:
    assert hitl_request(hitl_context(state=state)) is None


def test_other_tasks_get_the_usual_alert() -> None:
    assert (
        hitl_request({"task": SimpleNamespace(subject="x"), "ti": SimpleNamespace(state="running")}) is None
    )
