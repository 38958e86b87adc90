"""The approval trigger and the sandbox's people (scripted replies, the inbox reply box), over
real HTTP: read faults, a restart of the trigger, recalled replies, serialization."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from airflow_provider_imkit.decisions import Question
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
from airflow_provider_imkit.triggers.imkit import ImkitApprovalTrigger
from tests.conftest import API_KEY

HISTORY = "/rooms/ops/messages/v3"


def ask(sandbox: ImkitSandbox, timeout_ms: int | None = 3_600_000) -> Question:
    with ImkitHook() as hook:
        asked = hook.send_message(
            room="ops", sender="bot", message="Publish?\n1. Approve\n2. Reject", mentions=["alice"]
        )
    return Question(
        room="ops",
        sender="bot",
        approvers=("alice", "bob"),
        options=("Approve", "Reject"),
        message_id=asked["_id"],
        asked_at_ms=asked["createdAtMS"],
        deadline_ms=None if timeout_ms is None else asked["createdAtMS"] + timeout_ms,
    )


#: The fast_loop fixture: runs a coroutine in an event loop whose time only moves when all waits.
Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def quick_hook(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    """The trigger's hook records its retry waits (< 1 s) in ``sleeps`` instead of waiting."""
    monkeypatch.setattr(
        ImkitApprovalTrigger, "_hook", lambda self: ImkitHook(self.imkit_conn_id, sleep=sleeps.append)
    )


async def first_event(
    trigger: ImkitApprovalTrigger, people: dict[float, Callable[[], None]] | None = None
) -> tuple[float, dict[str, Any]]:
    """The trigger's first event and the loop time it came at; ``people`` act at their times."""
    loop = asyncio.get_running_loop()
    for at, act in (people or {}).items():
        loop.call_at(at, act)
    async for event in trigger.run():
        return loop.time(), dict(event.payload)
    raise AssertionError("the trigger ended without an event")


@pytest.mark.usefixtures("quick_hook")
def test_the_trigger_waits_through_read_faults_and_ignores_what_does_not_count(
    sandbox: ImkitSandbox, fast_loop: Run
) -> None:
    question = ask(sandbox)
    for _ in range(2):
        sandbox.inject(HISTORY, Fault("status", status=503), times=2)  # both attempts of a read
    sandbox.inject(HISTORY, Fault("close_before"), times=2)

    def chatter() -> None:
        sandbox.post_as("bob", "ops", "what report?")
        sandbox.post_as("alice", "ops", "Approve", mentions=[])
        ignored = sandbox.received("ops")[-1]
        sandbox.recall("ops", ignored["_id"])  # recalled: it never counts

    def replies() -> None:
        sandbox.post_as("bot", "ops", "Approve")  # the bot itself
        sandbox.post_as("bob", "ops", " reject ")

    trigger = ImkitApprovalTrigger(question=question.to_json(), poll_interval=7)
    at, event = fast_loop(first_event(trigger, {1.0: chatter, 50.0: replies}))
    reply = sandbox.received("ops")[-1]
    assert event == {
        "status": "chosen", "chosen": "Reject", "by": "bob", "message_id": reply["_id"],
        "at_ms": reply["createdAtMS"], "error": None, "question": question.to_json(),
    }  # fmt: skip
    # Reads at 0, 7, 21 s failed (backing off 7, 14, 28 s); 49 s saw the chatter; 56 s decided.
    assert at == 56.0
    assert sandbox.request_counts()["POST /messages"] == 1  # the question only: the trigger posts nothing


@pytest.mark.usefixtures("quick_hook")
def test_a_restarted_trigger_resumes_from_the_question(sandbox: ImkitSandbox, fast_loop: Run) -> None:
    """A triggerer restart: the first trigger is cancelled mid-wait; one rebuilt from its
    serialized kwargs finds the reply given meanwhile and asks nothing again."""
    question = ask(sandbox)
    first = ImkitApprovalTrigger(question=question.to_json(), poll_interval=5)

    async def run_until_after_the_first_read() -> None:
        task = asyncio.ensure_future(first.run().__anext__())
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    fast_loop(run_until_after_the_first_read())
    assert sandbox.request_counts()["GET " + HISTORY] == 1
    sandbox.post_as("alice", "ops", "1")
    classpath, kwargs = first.serialize()
    assert classpath == "airflow_provider_imkit.triggers.imkit.ImkitApprovalTrigger"
    restored = ImkitApprovalTrigger(**json.loads(json.dumps(kwargs)))
    at, event = fast_loop(first_event(restored))
    assert (at, event["status"], event["chosen"], event["by"]) == (0.0, "chosen", "Approve", "alice")
    assert sandbox.request_counts()["POST /messages"] == 1


@pytest.mark.usefixtures("quick_hook")
def test_many_triggers_on_two_rooms_read_each_room_once_an_interval(
    sandbox: ImkitSandbox, fast_loop: Run
) -> None:
    """40 waits, 20 a room, over real HTTP: the sandbox sees one read per room per interval
    (4 each by the reply's read at 30 s), not one per wait; every wait is decided by it."""
    sandbox.add_room("ops-2", members=["bot", "alice", "bob"])
    questions = [ask_in(sandbox, room) for room in ("ops", "ops-2") for _ in range(20)]

    def approve() -> None:
        sandbox.post_as("alice", "ops", "Approve")
        sandbox.post_as("alice", "ops-2", "2")

    async def all_events() -> list[tuple[float, dict[str, Any]]]:
        triggers = [ImkitApprovalTrigger(question=q, poll_interval=10) for q in questions]
        asyncio.get_running_loop().call_at(25.0, approve)
        return list(await asyncio.gather(*(first_event(t) for t in triggers)))

    events = fast_loop(all_events())
    assert {(at, e["status"], e["chosen"], e["question"]["room"]) for at, e in events} == {
        (30.0, "chosen", "Approve", "ops"),
        (30.2, "chosen", "Reject", "ops-2"),
    }  # fmt: skip  (the second room's reads take the budget's next slot: 300 a minute, 0.2 s on)
    counts = sandbox.request_counts()
    assert counts["GET /rooms/ops/messages/v3"] == 4 and counts["GET /rooms/ops-2/messages/v3"] == 4


def ask_in(sandbox: ImkitSandbox, room: str) -> dict[str, Any]:
    with ImkitHook() as hook:
        asked = hook.send_message(room=room, sender="bot", message="Publish?", mentions=["alice"])
    return Question(room=room, sender="bot", approvers=("alice", "bob"), options=("Approve", "Reject"),
                    message_id=asked["_id"], asked_at_ms=asked["createdAtMS"]).to_json()  # fmt: skip


def test_serialized_kwargs_hold_no_secret(sandbox: ImkitSandbox) -> None:
    question = ask(sandbox)
    _, kwargs = ImkitApprovalTrigger(question=question.to_json(), poll_interval=5).serialize()
    text = json.dumps(kwargs)
    assert API_KEY not in text and "password" not in text
    assert set(kwargs) == {"question", "poll_interval", "imkit_conn_id"}


@pytest.mark.usefixtures("quick_hook")
def test_no_reply_by_the_deadline_times_out(sandbox: ImkitSandbox, fast_loop: Run) -> None:
    question = ask(sandbox, timeout_ms=0)
    time.sleep(0.002)  # the read starts after the deadline (ms resolution)
    trigger = ImkitApprovalTrigger(question=question.to_json(), poll_interval=5)
    at, event = fast_loop(first_event(trigger))
    assert (at, event["status"], event["chosen"]) == (0.0, "timeout", None)


@pytest.mark.usefixtures("quick_hook")
def test_an_unknown_room_ends_the_wait_with_an_error(sandbox: ImkitSandbox, fast_loop: Run) -> None:
    question = ask(sandbox)
    gone = {**question.to_json(), "room": "no-such-room"}
    _, event = fast_loop(first_event(ImkitApprovalTrigger(question=gone, poll_interval=5)))
    assert event["status"] == "error" and "ROOM_NOT_FOUND" in event["error"]


# -- the sandbox's people ------------------------------------------------------------------------


def test_scripted_replies_answer_the_next_question_in_order(sandbox: ImkitSandbox) -> None:
    sandbox.auto_reply("ops", "mallory", "Approve")  # a bystander: not mentioned, still replies
    sandbox.auto_reply("ops", "alice", "Reject")
    sandbox.post_as("bot", "ops", "no question: nobody mentioned")
    assert len(sandbox.received("ops")) == 1
    answer = requests.post(
        sandbox.url + "/_sandbox/auto-replies",
        json={"room": "ops", "user": "bob", "text": "2"},
        headers={"IM-API-KEY": API_KEY},
        timeout=5,
    )
    assert answer.status_code == 200
    sandbox.add_user("mallory")
    with ImkitHook() as hook:
        hook.send_message(room="ops", sender="bot", message="Go?", mentions=["alice"])
    assert [(m["sender"], m["message"]) for m in sandbox.received("ops")[1:]] == [
        ("bot", "Go?"), ("mallory", "Approve"), ("alice", "Reject"), ("bob", "2"),
    ]  # fmt: skip
    with ImkitHook() as hook:
        hook.send_message(room="ops", sender="bot", message="Again?", mentions=["alice"])
    assert sandbox.received("ops")[-1]["message"] == "Again?"  # used up
    bad = requests.post(
        sandbox.url + "/_sandbox/auto-replies",
        json={"room": "ops"},
        headers={"IM-API-KEY": API_KEY},
        timeout=5,
    )
    assert bad.status_code == 400 and "auto-reply" in bad.json()["RM"]


def test_the_inbox_reply_box_posts_as_the_chosen_user(sandbox: ImkitSandbox) -> None:
    page = requests.get(sandbox.url + "/", timeout=5).text
    assert 'form id=reply method=post action="/inbox/reply"' in page
    assert '<option value="alice">alice</option>' in page
    answer = requests.post(
        sandbox.url + "/inbox/reply",
        data={"room": "ops", "user": "alice", "message": "Approve"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/?room=ops&user=alice#room-ops"
    (stored,) = sandbox.received("ops")
    assert (stored["sender"], stored["message"], stored["messageType"]) == ("alice", "Approve", "text")
    again = requests.get(sandbox.url + answer.headers["Location"], timeout=5).text
    assert '<option value="alice" selected>alice</option>' in again and 'id="room-ops"' in again
    missing = requests.post(sandbox.url + "/inbox/reply", data={"room": "ops", "user": "alice"}, timeout=5)
    assert missing.status_code == 400 and "message" in missing.json()["RM"]
    forged = requests.post(
        sandbox.url + "/inbox/reply",
        data={"room": "ops", "user": "alice", "message": "Approve"},
        headers={"Origin": "https://evil.example"},
        timeout=5,
    )
    assert forged.status_code == 403  # another site's page cannot answer for alice
    unknown = requests.post(
        sandbox.url + "/inbox/reply", data={"room": "ops", "user": "ghost", "message": "hi"}, timeout=5
    )
    assert unknown.status_code == 404
    assert len(sandbox.received("ops")) == 1


# -- a later try of the task -----------------------------------------------------------------------


def later_try_context() -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    started = datetime.now(tz=UTC) - timedelta(minutes=5)
    return {
        "ti": SimpleNamespace(try_number=2, start_date=started),
        "dag_run": SimpleNamespace(start_date=started),
    }


def gate_operator() -> Any:
    from airflow_provider_imkit.operators.approval import ImkitApprovalOperator

    return ImkitApprovalOperator(
        task_id="gate", room="ops", sender="bot", subject="Publish?", approvers=["alice"], timeout=None
    )


TEXT = "Publish?\n\n1. Approve\n2. Reject\n\nReply with an option's name or number.\nDeciding: @alice"


def draft(timeout_ms: int | None = None) -> Question:
    """The question as the operator has it before asking (no id, no times yet)."""
    return Question("ops", "bot", ("alice",), ("Approve", "Reject"), "", 0, deadline_ms=timeout_ms)


def test_a_later_try_waits_on_the_earlier_tries_unanswered_question(sandbox: ImkitSandbox) -> None:
    """The worker died while waiting: the retry finds the question and asks nothing again."""
    op = gate_operator()
    first = op._ask({}, draft(), TEXT)
    sandbox.post_as("bob", "ops", "chatter")  # not an approver: decides nothing
    sandbox.post_as("alice", "ops", "maybe later")  # not an option: decides nothing
    again = op._ask(later_try_context(), draft(), TEXT)
    assert again["_id"] == first["_id"]
    assert sandbox.request_counts()["POST /messages"] == 1


@pytest.mark.parametrize(
    "decided_by",
    ["the outcome note", "a counting reply, its note never posted", "its wait being over"],
)
def test_a_later_try_never_reuses_a_decided_question(sandbox: ImkitSandbox, decided_by: str) -> None:
    """Cleared after a decision: the new try asks again (and so waits for a new answer)."""
    op = gate_operator()
    timeout_ms = 1 if decided_by == "its wait being over" else 3_600_000  # the task's timeout
    first = op._ask({}, draft(timeout_ms), TEXT)
    if decided_by == "the outcome note":
        sandbox.post_as("alice", "ops", "Reject")
        sandbox.post_as("bot", "ops", f'Rejected by alice ("Reject"): Publish?\nQuestion: {first["_id"]}')
    elif decided_by.startswith("a counting reply"):
        sandbox.post_as("alice", "ops", "2")
    else:
        time.sleep(0.01)  # past its 1 ms wait (on IMKIT's clock: the same host here)
    again = op._ask(later_try_context(), draft(timeout_ms), TEXT)
    assert again["_id"] != first["_id"]
    assert [m["message"] for m in sandbox.received("ops")].count(TEXT) == 2


def test_another_questions_outcome_note_does_not_decide_this_one(sandbox: ImkitSandbox) -> None:
    """Try 1's note (same subject, same text) was posted; try 2's question is still open."""
    op = gate_operator()
    first = op._ask({}, draft(), TEXT)
    sandbox.post_as("bot", "ops", f'Approved by alice ("Approve"): Publish?\nQuestion: {first["_id"]}')
    second = op._ask(later_try_context(), draft(), TEXT)
    assert second["_id"] != first["_id"]
    third = op._ask(later_try_context(), draft(), TEXT)  # try 3: try 2's question is undecided
    assert third["_id"] == second["_id"]


def test_every_try_s_decision_is_acknowledged(sandbox: ImkitSandbox) -> None:
    """Try 1 and try 2 each decided by 'Approve': two notes, one per question (the read-back
    of try 2's note never takes try 1's identical-looking one for it)."""
    from airflow_provider_imkit.decisions import decision_text

    op = gate_operator()
    notes = []
    for context in ({}, later_try_context()):
        asked = op._ask(context, draft(), TEXT)
        question = Question(
            "ops", "bot", ("alice",), ("Approve", "Reject"), asked["_id"], asked["createdAtMS"]
        )
        sandbox.post_as("alice", "ops", "Approve")
        note = decision_text("Publish?", "Approve", "alice", True, asked["_id"])
        op._tell(context, question, note)
        notes.append(note)
    said = [m["message"] for m in sandbox.received("ops")]
    assert said.count(TEXT) == 2 and all(said.count(note) == 1 for note in notes)
    # The same note told again by a later try of that question is not posted twice.
    op._tell(later_try_context(), question, notes[-1])
    assert [m["message"] for m in sandbox.received("ops")].count(notes[-1]) == 1


def test_a_host_clock_ahead_of_imkit_s_does_not_end_the_wait_early(sandbox: ImkitSandbox) -> None:
    """The triggerer's clock is 60 s ahead of IMKIT's: a 30 s wait is judged on IMKIT's clock
    (the Date header of each read), so the first read does not end it."""
    from airflow_provider_imkit.decisions import ApprovalWait

    question = ask(sandbox, timeout_ms=30_000)

    def ahead() -> float:
        return time.time() + 60

    wait = ApprovalWait(question, 10.0, clock=ahead)
    with ImkitHook(clock=ahead) as hook:
        step = wait.poll(hook.client)
        assert step == 10.0  # not a timeout: wait again
        sandbox.post_as("alice", "ops", "Approve")
        outcome = wait.poll(hook.client)
    assert not isinstance(outcome, float) and outcome.chosen == "Approve"


def test_a_later_try_never_adopts_the_decided_question_its_own_read_back_finds(
    sandbox: ImkitSandbox, fake_client_time: Any
) -> None:
    """Try 2 posts its question; IMKIT gives no answer and never stores it; the hook's
    read-back then finds try 1's identical, decided question. Waiting on it would reuse its
    answer: the try fails instead (retryable), and nothing was decided for it."""
    from airflow_provider_imkit.exceptions import ImkitReadBackError

    op = gate_operator()
    first = op._ask({}, draft(), TEXT)
    sandbox.post_as("alice", "ops", "Approve")  # try 1's question is decided
    sandbox.inject("/messages", Fault("close_before"))
    context = later_try_context()
    context["dag_run"].start_date = context["ti"].start_date = datetime.now(tz=UTC)  # try 2 just began
    with pytest.raises(ImkitReadBackError, match="earlier try's decided question"):
        op._ask(context, draft(), TEXT)
    assert [m["_id"] for m in sandbox.received("ops") if m["message"] == TEXT] == [first["_id"]]
