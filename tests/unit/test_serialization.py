"""Every public parameter of the notifier and the trigger survives Airflow's serializers, on
every Airflow 3 in CI: a Deadline Alert's kwargs through the DAG serializer and the
scheduler's decoding, then the trigger kwargs' serializer (as the triggerer gets them).

Issue: ``AsyncCallback(ImkitNotifier, kwargs={..., "retry": RetryPolicy(max_attempts=2)})``
made the DAG fail to serialize (``RetryPolicy`` held a function), so the DAG never loaded.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS

pytestmark = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="Airflow 2 has no task SDK serializers")

POLICY = RetryPolicy(max_attempts=2, backoff=0.5, on_ambiguous="fail", settle=5.0)

#: One value for each public parameter of ImkitNotifier (besides room and sender).
NOTIFIER_VALUES: dict[str, Any] = {
    "message": "late: {{ dag_run.run_id }} 遲到 ⏰",
    "message_type": "announcement",
    "push": False,
    "skip_total_badge": True,
    "mentions": ["alice", "bob"],
    "imkit_conn_id": "imkit_ops",
    "retry": POLICY,
    "timeout": (5.0, 30.0),
}


def trigger_storage(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What a trigger's kwargs become in the metadata database and back (the triggerer's view)."""
    from airflow.serialization.serialized_objects import BaseSerialization

    stored = json.loads(json.dumps(BaseSerialization.serialize(kwargs)))
    return dict(BaseSerialization.deserialize(stored))


def scheduler_view(dag: Any) -> dict[str, Any]:
    """The Deadline Alert's callback kwargs as the scheduler decodes them from the serialized DAG."""
    from airflow.serialization import serialized_objects

    # DagSerialization from 3.2; SerializedDAG before.
    serializer: Any = (
        getattr(serialized_objects, "DagSerialization", None) or serialized_objects.SerializedDAG
    )
    data = json.loads(json.dumps(serializer.to_dict(dag)))
    raw: Any = serializer.from_dict(data).deadline
    raw = raw[0] if isinstance(raw, list) else raw
    if isinstance(raw, dict):
        try:
            from airflow.serialization.decoders import decode_deadline_alert
        except ImportError:  # Airflow 3.1
            from airflow.sdk.definitions.deadline import DeadlineAlert

            alert: Any = DeadlineAlert.deserialize_deadline_alert(raw)  # type: ignore[attr-defined,unused-ignore]
        else:
            alert = decode_deadline_alert(raw)
    else:
        alert = raw
    callback = alert.callback
    return dict(callback.kwargs if hasattr(callback, "kwargs") else callback["kwargs"])


def deadline_dag(kwargs: dict[str, Any]) -> Any:
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    try:
        from airflow.sdk.definitions.callback import AsyncCallback
    except ImportError:  # Airflow 3.1
        from airflow.sdk.definitions.deadline import AsyncCallback  # type: ignore[no-redef,unused-ignore]

    from airflow_provider_imkit.notifications.imkit import ImkitNotifier

    alert = DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=10),
        callback=AsyncCallback(ImkitNotifier, kwargs=kwargs),
    )
    with DAG("imkit_deadline", start_date=datetime(2026, 1, 1), schedule=None, deadline=alert) as dag:
        EmptyOperator(task_id="t")
    return dag


@pytest.mark.skipif(not AIRFLOW_V_3_1_PLUS, reason="Deadline Alerts exist from Airflow 3.1")
@pytest.mark.parametrize("name", list(NOTIFIER_VALUES))
def test_each_notifier_parameter_survives_a_deadline_alert(name: str) -> None:
    from airflow_provider_imkit.notifications.imkit import ImkitNotifier

    value = NOTIFIER_VALUES[name]
    kwargs = trigger_storage(scheduler_view(deadline_dag({"room": "ops", "sender": "bot", name: value})))
    notifier = ImkitNotifier(**kwargs)
    got = getattr(notifier, name)
    if name == "retry":
        assert RetryPolicy.coerce(got) == POLICY
    elif name == "timeout":
        assert tuple(got) == value
    else:
        assert got == value
    assert (notifier.room, notifier.sender) == ("ops", "bot")


def test_retry_policy_round_trips_through_serde_and_its_repr() -> None:
    from airflow.providers.common.compat.sdk import DAG  # noqa: F401  (loads serde as DAG files do)

    try:
        from airflow.sdk.serde import deserialize, serialize
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.serialization.serde import deserialize, serialize  # type: ignore[no-redef]

    stored = json.loads(json.dumps(serialize(POLICY)))
    assert deserialize(stored) == POLICY
    assert RetryPolicy.coerce(repr(POLICY)) == POLICY
    assert RetryPolicy.coerce(POLICY.serialize()) == POLICY
    # A payload stored by 0.2.0 names the class by its old module: still decoded.
    old = json.loads(
        json.dumps(stored).replace("airflow_provider_imkit.client.retry.", "airflow_provider_imkit.retry.")
    )
    assert old != stored and deserialize(old) == POLICY


def test_the_approval_trigger_s_kwargs_survive_the_trigger_serializer() -> None:
    from airflow_provider_imkit.decisions import Question
    from airflow_provider_imkit.triggers.imkit import ImkitApprovalTrigger

    question = Question("ops", "bot", ("alice",), ("Approve", "Reject"), "m1", 1, 2, ("Approve",), "Reject")
    trigger = ImkitApprovalTrigger(question=question.to_json(), poll_interval=7.5, imkit_conn_id="imkit_ops")
    classpath, kwargs = trigger.serialize()
    again = ImkitApprovalTrigger(**trigger_storage(kwargs))
    assert again.serialize() == (classpath, kwargs)
    assert Question.from_json(again.question) == question
