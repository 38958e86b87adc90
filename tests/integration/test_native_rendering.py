"""Every templated field of the operators and the notifier under native rendering, sent over
real HTTP to the sandbox; and one notifier called from 8 threads with 8 contexts."""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_imkit.exceptions import ImkitValidationError
from airflow_provider_imkit.notifications.imkit import ImkitNotifier
from airflow_provider_imkit.operators.imkit import (
    ImkitBatchSendMessageOperator,
    ImkitRecallMessageOperator,
    ImkitSendMessageOperator,
)
from airflow_provider_imkit.sandbox import ImkitSandbox


def native_dag() -> DAG:
    return DAG(
        "native",
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        schedule=None,
        render_template_as_native_obj=True,
    )


def rendered(op: Any, params: dict[str, Any]) -> Any:
    op.render_template_fields(context={"params": params, "ds": "2026-01-02"})
    return op


SEND: dict[str, Any] = {"room": "ops", "sender": "bot", "message": "m"}

# (field, the value the template renders to natively, what the room must hold)
SEND_CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("message", 1284, {"message": "1284"}),
    ("message", 12.5, {"message": "12.5"}),
    ("message", True, {"message": "True"}),
    ("message", Decimal("3.10"), {"message": "3.10"}),
    ("message", datetime.date(2026, 1, 2), {"message": "2026-01-02"}),
    ("message", {"rows": 3, "表": "ok"}, {"message": '{"rows":3,"表":"ok"}'}),
    ("message", [1, 2], {"message": "[1,2]"}),
    ("room", 1234, {"room": "1234"}),
    ("sender", 42, {"sender": "42"}),
    ("message_type", "announcement", {"messageType": "announcement"}),
    ("mentions", ["alice", "bob"], {"mentions": ["alice", "bob"]}),
    ("mentions", "alice,bob", {"mentions": ["alice", "bob"]}),
    ("mentions", [42, "bob"], {"mentions": ["42", "bob"]}),
    ("imkit_conn_id", "imkit_default", {}),
]


@pytest.fixture
def native_sandbox(sandbox: ImkitSandbox) -> ImkitSandbox:
    sandbox.add_room("1234")
    sandbox.add_user("42")
    return sandbox


@pytest.mark.parametrize(
    ("field", "value", "expected"), SEND_CASES, ids=[f"{c[0]}={c[1]!r}" for c in SEND_CASES]
)
def test_send_operator_fields(
    native_sandbox: ImkitSandbox, field: str, value: Any, expected: dict[str, Any]
) -> None:
    assert field in ImkitSendMessageOperator.template_fields
    with native_dag():
        op = ImkitSendMessageOperator(task_id="t", **({**SEND, field: "{{ params.value }}"}))
    result = rendered(op, {"value": value}).execute({})
    room = expected.get("room", "ops")
    (stored,) = native_sandbox.received(room)
    assert stored["_id"] == result["_id"]
    assert {key: stored[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"), SEND_CASES, ids=[f"{c[0]}={c[1]!r}" for c in SEND_CASES]
)
def test_notifier_fields(
    native_sandbox: ImkitSandbox, field: str, value: Any, expected: dict[str, Any]
) -> None:
    assert field in ImkitNotifier.template_fields
    notifier = ImkitNotifier(**({**SEND, field: "{{ params.value }}"}))
    notifier({"dag": native_dag(), "params": {"value": value}})
    (stored,) = native_sandbox.received(expected.get("room", "ops"))
    assert {key: stored[key] for key in expected} == expected
    assert notifier.room == "ops" or field == "room"  # the notifier itself is never rendered into
    assert getattr(notifier, field) == "{{ params.value }}"


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_empty_message_fails_the_operator_and_defaults_the_notifier(
    native_sandbox: ImkitSandbox, empty: Any
) -> None:
    with native_dag():
        op = ImkitSendMessageOperator(task_id="t", **({**SEND, "message": "{{ params.value }}"}))
    with pytest.raises(ImkitValidationError, match="'message'.*rendered to nothing"):
        rendered(op, {"value": empty}).execute({})
    assert native_sandbox.requests() == []
    ImkitNotifier(**({**SEND, "message": "{{ params.value }}"}))(
        {"dag": native_dag(), "params": {"value": empty}}
    )
    (stored,) = native_sandbox.received("ops")
    assert stored["message"].startswith("ℹ️ Airflow")  # the default text


BATCH_CASES: list[tuple[str, Any, str, list[str]]] = [
    ("rooms", ["ops", 1234], "rooms", ["ops", "1234"]),
    ("rooms", "ops;1234", "rooms", ["ops", "1234"]),
    ("receivers", ["alice", 42], "receivers", ["alice", "42"]),
    ("receivers", "['alice', 'bob']", "receivers", ["alice", "bob"]),
]


@pytest.mark.parametrize(("field", "value", "kind", "ids"), BATCH_CASES)
def test_batch_list_fields(
    native_sandbox: ImkitSandbox, field: str, value: Any, kind: str, ids: list[str]
) -> None:
    with native_dag():
        templated: dict[str, Any] = {field: "{{ params.value }}"}
        op = ImkitBatchSendMessageOperator(task_id="b", message="{{ params.n }} rows", **templated)
    result = rendered(op, {"value": value, "n": 7}).execute({})
    assert result["count"] == len(ids)
    native_sandbox.app.flush_batches()
    got = {
        room: [m["message"] for m in messages]
        for room, messages in native_sandbox.all_received().items()
        if messages
    }
    if kind == "rooms":
        assert got == {room: ["7 rows"] for room in ids}
    else:  # each receiver gets it in a direct room named after them
        assert sorted(got.values()) == [["7 rows"]] * len(ids)
        assert all(any(receiver in room for room in got) for receiver in ids)


def test_batch_values_sender_and_type(native_sandbox: ImkitSandbox) -> None:
    with native_dag():
        op = ImkitBatchSendMessageOperator(
            task_id="b",
            message="$n$ rows",
            rooms=["ops"],
            values="{{ params.vals }}",
            sender="{{ params.sender }}",
            message_type="{{ params.type }}",
        )
    rendered(op, {"vals": {"ops": {"$n$": 5}}, "sender": 42, "type": "announcement"}).execute({})
    native_sandbox.app.flush_batches()
    (stored,) = native_sandbox.received("ops")
    assert (stored["message"], stored["sender"], stored["messageType"]) == ("5 rows", "42", "announcement")


def test_recall_fields(native_sandbox: ImkitSandbox) -> None:
    with native_dag():
        send = ImkitSendMessageOperator(task_id="s", room="1234", sender="bot", message="to recall")
    sent = send.execute({})
    with native_dag():
        op = ImkitRecallMessageOperator(task_id="r", room="{{ params.room }}", message_id="{{ params.id }}")
    rendered(op, {"room": 1234, "id": sent["_id"]}).execute({})
    assert native_sandbox.received("1234")[0]["messageType"] == "recall"


def test_one_notifier_from_8_threads_with_8_contexts(sandbox: ImkitSandbox) -> None:
    notifier = ImkitNotifier(
        room="ops", sender="bot", message="{{ params.n }} failed", mentions="{{ params.who }}"
    )
    barrier = threading.Barrier(8)

    def call(n: int) -> None:
        barrier.wait()
        notifier({"params": {"n": f"task-{n}", "who": "alice" if n % 2 else "bob"}})

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = sorted((m["message"], tuple(m["mentions"])) for m in sandbox.received("ops"))
    assert got == sorted((f"task-{n} failed", ("alice" if n % 2 else "bob",)) for n in range(8))
    assert notifier.message == "{{ params.n }} failed"
