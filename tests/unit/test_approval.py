"""Approval logic without a server: options, the question text, which replies count, the wait."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_imkit import decisions as approval
from airflow_provider_imkit.decisions import ApprovalWait, Outcome, Question
from airflow_provider_imkit.decisions import wait as wait_module
from airflow_provider_imkit.exceptions import (
    ImkitAuthenticationError,
    ImkitConnectionError,
    ImkitRateLimitError,
    ImkitValidationError,
)

T0 = 1_780_000_000_000  # the question's createdAtMS

QUESTION = Question(
    room="ops",
    sender="bot",
    approvers=("alice", "bob"),
    options=("Approve", "Reject", "Later"),
    message_id="q1",
    asked_at_ms=T0,
    deadline_ms=T0 + 60_000,
)


def msg(text: Any, sender: str = "alice", at: int = T0 + 1000, **extra: Any) -> dict[str, Any]:
    """A message as GET /rooms/{room}/messages/v3 lists it (sender as a user object)."""
    return {
        "_id": extra.pop("_id", f"m{at}-{sender}"),
        "message": text,
        "room": "ops",
        "sender": {"_id": sender, "nickname": sender},
        "messageType": extra.pop("messageType", "text"),
        "createdAtMS": at,
        "messageTimeMS": at,
        "isDeleted": False,
        **extra,
    }


# -- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (("Approve", "Reject"), ["Approve", "Reject"]),
        (["  Go ", "Stop"], ["Go", "Stop"]),
        ("Approve,Reject", ["Approve", "Reject"]),
        ('["Publish now", "Hold"]', ["Publish now", "Hold"]),
        ("['A', 'B']", ["A", "B"]),
        (["1", "2"], ["1", "2"]),  # numbers that are their own positions are fine
    ],
)
def test_options_are_read_from_lists_and_rendered_text(value: Any, expected: list[str]) -> None:
    assert approval.options_list("options", value) == expected


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ([], "options", "at least one option"),
        (["Approve", "approve"], "options[1]", "given twice"),
        (["Approve", ""], "options[1]", "non-empty"),
        (["Approve", 3], "options[1]", "non-empty string"),
        (["Approve", "Re\nject"], "options[1]", "one line"),
        (["x" * 101], "options[0]", "at most 100"),
        (["Approve", "1"], "options[1]", "ambiguous"),
        ({"a": 1}, "options", "list of option names"),
    ],
)
def test_bad_options_name_the_item_and_the_problem(value: Any, field: str, words: str) -> None:
    with pytest.raises(ImkitValidationError) as err:
        approval.options_list("options", value)
    assert err.value.field == field
    assert words in str(err.value)


def test_approve_and_default_options_must_be_options_and_take_their_spelling() -> None:
    options = ["Approve", "Reject", "Yes, publish"]
    assert approval.pick_options("approve_options", ("approve",), options) == ["Approve"]
    assert approval.pick_options("approve_options", "Yes, publish", options) == ["Yes, publish"]
    with pytest.raises(ImkitValidationError) as err:
        approval.pick_options("approve_options", ["Approve", "Maybe"], options)
    assert err.value.field == "approve_options[1]" and "'Maybe' is not one of the options" in str(err.value)


def test_approvers_are_required_and_parsed_like_mentions() -> None:
    assert approval.approvers_list("alice, bob") == ["alice", "bob"]
    assert approval.approvers_list('["alice"]') == ["alice"]
    empties: tuple[Any, ...] = (None, [], "")
    for empty in empties:
        with pytest.raises(ImkitValidationError, match="approvers.*at least one"):
            approval.approvers_list(empty)
    with pytest.raises(ImkitValidationError) as err:
        approval.approvers_list(["alice", "bad id"])
    assert err.value.field == "approvers[1]"


# -- texts ---------------------------------------------------------------------------------------


def test_question_text_has_everything_a_person_needs() -> None:
    text = approval.question_text(
        subject="Publish the finance report?",
        body="Rows: 1284",
        options=["Approve", "Reject"],
        approvers=["alice", "bob"],
        timeout_seconds=86400,
        link="http://airflow.example/dags/d/runs/r/tasks/t",
    )
    assert text.splitlines() == [
        "Publish the finance report?",
        "",
        "Rows: 1284",
        "",
        "1. Approve",
        "2. Reject",
        "",
        "Reply with an option's name or number.",
        "Deciding: @alice, @bob",
        "Waiting up to 1 day for an answer.",
        "Task: http://airflow.example/dags/d/runs/r/tasks/t",
    ]
    bare = approval.question_text(
        subject="Go?", body=None, options=["Go"], approvers=["a"], timeout_seconds=None, link=None
    )
    assert "Waiting" not in bare and "Task:" not in bare


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (90, "1 minute 30 seconds"),
        (86400, "1 day"),
        (93784, "1 day 2 hours"),
    ],
)
def test_human_duration(seconds: float, words: str) -> None:
    assert approval.human_duration(seconds) == words


def test_outcome_texts() -> None:
    assert (
        approval.decision_text("Publish?", "Approve", "alice", True, "q1")
        == 'Approved by alice ("Approve"): Publish?\nQuestion: q1'
    )
    assert approval.decision_text("Publish?", "Reject", "bob", False, "q1").startswith("Rejected by bob")
    assert "The task fails" in approval.timeout_text("Publish?", 3600, None, False, "q1")
    said = approval.timeout_text("Publish?", 3600, "Reject", False, "q1")
    assert "No answer within 1 hour" in said and '"Reject"' in said and "does not go ahead" in said


def test_an_outcome_note_names_its_own_question_only() -> None:
    """Two tries asking the same question: each acknowledgement closes its own question."""
    said = approval.decision_text("Publish?", "Approve", "alice", True, "q1")
    assert approval.is_outcome_text(said, "q1")
    assert not approval.is_outcome_text(said, "q2")
    assert not approval.is_outcome_text(said, "q")  # no prefix match
    assert approval.is_outcome_text(approval.timeout_text("Publish?", 60, None, False, "q2"), "q2")
    assert not approval.is_outcome_text("Publish?\nQuestion: q1", "q1")  # not an outcome


class _SkewedClient:
    """A client whose last answer said IMKIT's time is ``server``."""

    def __init__(self, server: float) -> None:
        self.server = server

    def server_time(self) -> float:
        return self.server


@pytest.mark.parametrize(
    ("host", "server", "judged"),
    [
        (1000.0, 1000.4, 1000.0),  # agree (a Date is to the second): the host's finer clock
        (1060.0, 1000.0, 1000.5),  # host 60 s ahead: IMKIT's time
        (940.0, 1000.0, 1000.5),  # host 60 s behind: IMKIT's time
    ],
)
def test_the_deadline_is_judged_on_imkit_s_clock(host: float, server: float, judged: float) -> None:
    question = approval.Question("r", "bot", ("alice",), ("Approve",), "q", 0, deadline_ms=30_000)
    wait = approval.ApprovalWait(question, 10.0, clock=lambda: host)
    assert wait.server_now(_SkewedClient(server)) == judged  # type: ignore[arg-type]


# -- which replies count -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "chosen"),
    [
        (msg("Approve"), "Approve"),
        (msg("  approve \n"), "Approve"),  # trimmed, any case
        (msg("REJECT"), "Reject"),
        (msg("1"), "Approve"),
        (msg(" 3 "), "Later"),
        (msg("later", sender="bob"), "Later"),
        (msg("１"), "Approve"),  # full-width, from a CJK keyboard
        (msg("ＲＥＪＥＣＴ"), "Reject"),
        (msg("2", reply="q1"), "Reject"),  # a reply to the question itself
        (msg("2", reply="another-question"), None),  # a reply to another message
        ({**msg("2"), "sender": "bob"}, "Reject"),  # a sender given as an id, not an object
        (msg("4"), None),  # no such number
        (msg("0"), None),
        (msg("Approve it"), None),  # chatter
        (msg("ok"), None),
        (msg("Approve", sender="mallory"), None),  # not an approver
        (msg("Approve", sender="bot"), None),  # the bot's own message
        (msg("Approve", messageType="recall"), None),
        (msg("Approve", isDeleted=True), None),
        (msg("Approve", at=T0 - 1), None),  # before the question
        (msg("Approve", at=T0 + 60_001), None),  # after the deadline
        (msg("Approve", at=T0 + 60_000), "Approve"),  # at the deadline: in time
        (msg("Approve", at=T0), "Approve"),  # the same millisecond as the question
        (msg("Approve", _id="q1"), None),  # the question itself
        (msg({"text": "Approve"}), None),  # not text
        ({**msg("Approve"), "createdAtMS": None, "messageTimeMS": None}, None),  # no time
    ],
)
def test_which_replies_count(item: dict[str, Any], chosen: str | None) -> None:
    assert approval.chosen_option(item, QUESTION) == chosen


def test_question_and_outcome_travel_as_plain_json() -> None:
    data = json.loads(json.dumps(QUESTION.to_json()))
    assert Question.from_json(data) == QUESTION
    full = Question(**{**QUESTION.__dict__, "approve_options": ("Approve",), "default_option": "Later"})
    assert Question.from_json(json.loads(json.dumps(full.to_json()))) == full
    outcome = Outcome("chosen", chosen="Approve", by="alice", message_id="m1", at_ms=T0)
    assert Outcome.from_event(json.loads(json.dumps(outcome.to_event()))) == outcome
    assert Outcome.from_event({"status": "bogus"}).status == "error"
    assert Outcome.from_event(None).status == "error"


# -- the wait ------------------------------------------------------------------------------------


class FakeRoom:
    """Answers GET /rooms/{room}/messages/v3 from a list (newest first, afterTime honoured),
    or raises the queued errors first."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.errors: list[Exception] = []
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, path: str, *, params: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.calls.append(dict(params))
        if self.errors:
            raise self.errors.pop(0)
        after = params["afterTime"]
        data = [m for m in self.messages if m["createdAtMS"] >= after][::-1]
        if "beforeMessage" in params:
            ids = [m["_id"] for m in data]
            data = data[ids.index(params["beforeMessage"]) + 1 :]
        return {"totalCount": len(data), "data": data[: params["limit"]]}


def wait_with(room: FakeRoom, now: list[float], question: Question = QUESTION) -> ApprovalWait:
    return ApprovalWait(question, poll_interval=10.0, clock=lambda: now[0])


def test_the_first_counting_reply_decides_not_the_newest() -> None:
    room, now = FakeRoom(), [T0 / 1000 + 5]
    room.messages = [
        msg("hmm", at=T0 + 100),
        msg("Approve", sender="mallory", at=T0 + 200),
        msg("2", sender="bob", at=T0 + 300, _id="first"),
        msg("Approve", sender="alice", at=T0 + 400),
    ]
    outcome = wait_with(room, now).poll(room)  # type: ignore[arg-type]
    assert outcome == Outcome("chosen", chosen="Reject", by="bob", message_id="first", at_ms=T0 + 300)


def test_replies_in_the_same_millisecond_keep_the_rooms_order() -> None:
    room, now = FakeRoom(), [T0 / 1000 + 5]
    room.messages = [msg("Reject", sender="bob", at=T0 + 7, _id="a"), msg("Approve", at=T0 + 7, _id="b")]
    outcome = wait_with(room, now).poll(room)  # type: ignore[arg-type]
    assert isinstance(outcome, Outcome) and outcome.message_id == "a"


def test_no_reply_sleeps_the_interval_and_reads_on_from_the_newest_seen() -> None:
    room, now = FakeRoom(), [T0 / 1000 + 5]
    room.messages = [msg("chatter", at=T0 + 8000)]
    wait = wait_with(room, now)
    assert wait.poll(room) == 10.0  # type: ignore[arg-type]
    assert room.calls[-1]["afterTime"] == T0 - 1
    assert wait.poll(room) == 10.0  # type: ignore[arg-type]
    # Not the whole room again; from 5 s before the newest seen (a reply stored late).
    assert room.calls[-1]["afterTime"] == T0 + 8000 - wait_module.CURSOR_OVERLAP_MS - 1
    room.messages.append(msg("approve", at=T0 + 3000))
    assert isinstance(wait.poll(room), Outcome)  # type: ignore[arg-type]


def test_a_busy_room_is_paged_to_the_first_reply() -> None:
    room, now = FakeRoom(), [T0 / 1000 + 5]
    room.messages = [msg("Approve", at=T0 + 1, _id="first")] + [
        msg(f"chatter {i}", sender="bob", at=T0 + 2 + i) for i in range(250)
    ]
    outcome = wait_with(room, now).poll(room)  # type: ignore[arg-type]
    assert isinstance(outcome, Outcome) and outcome.message_id == "first"
    assert len(room.calls) == 3  # 100 + 100 + 51


def test_the_last_sleep_ends_after_the_deadline_grace_and_a_read_then_times_out() -> None:
    """Replies made in time are still looked for during a grace for clocks that disagree
    (a tenth of the wait, at most 5 s), then the wait times out."""
    assert QUESTION.grace_ms == 5000
    room, now = FakeRoom(), [(T0 + 62_000) / 1000]
    wait = wait_with(room, now)
    assert wait.poll(room) == pytest.approx(3.0)  # type: ignore[arg-type]
    now[0] = (T0 + 65_000) / 1000
    assert wait.poll(room) == Outcome("timeout")  # type: ignore[arg-type]
    short = Question(**{**QUESTION.__dict__, "deadline_ms": T0 + 1000})
    assert short.grace_ms == 100


def test_a_reply_in_time_wins_even_when_read_after_the_deadline() -> None:
    """A triggerer that was down at the deadline still honours a reply given in time."""
    room, now = FakeRoom(), [(T0 + 3_600_000) / 1000]
    room.messages = [msg("Approve", at=T0 + 59_000), msg("Reject", sender="bob", at=T0 + 61_000)]
    outcome = wait_with(room, now).poll(room)  # type: ignore[arg-type]
    assert isinstance(outcome, Outcome) and outcome.chosen == "Approve"


def test_transient_errors_back_off_and_never_end_the_wait() -> None:
    room, now = FakeRoom(), [T0 / 1000 + 1]
    flaky = ImkitConnectionError("GET", "/rooms/ops/messages/v3", "reset", maybe_delivered=False)
    room.errors = [flaky] * 7
    wait = wait_with(room, now)
    delays = [wait.poll(room) for _ in range(7)]  # type: ignore[arg-type]
    assert delays == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert wait.failures == 7 and "reset" in str(wait.last_error)
    room.messages = [msg("1", at=T0 + 500)]
    assert isinstance(wait.poll(room), Outcome)  # type: ignore[arg-type]
    assert wait.failures == 0


def test_reads_failing_long_past_the_deadline_end_in_a_timeout_with_the_reason() -> None:
    room, now = FakeRoom(), [(T0 + 60_000) / 1000 + wait_module.READ_GRACE_AFTER_TIMEOUT]
    room.errors = [ImkitConnectionError("GET", "/x", "refused", maybe_delivered=False)]
    outcome = wait_with(room, now).poll(room)  # type: ignore[arg-type]
    assert isinstance(outcome, Outcome) and outcome.status == "timeout" and "refused" in str(outcome.error)


def test_a_room_too_busy_to_read_ends_the_wait_as_an_error() -> None:
    """More than 2,000 messages since the last read: reading again would meet them again."""
    room, now = FakeRoom(), [T0 / 1000 + 1]
    room.messages = [msg(f"chatter {i}", sender="bob", at=T0 + 1 + i) for i in range(2001)]
    outcome = wait_with(room, now).poll(room)  # type: ignore[arg-type]
    assert isinstance(outcome, Outcome) and outcome.status == "error" and "too busy" in str(outcome.error)


def test_any_other_error_is_waited_out_and_the_backoff_never_overflows() -> None:
    room, now = FakeRoom(), [T0 / 1000 + 1]
    room.errors = [RuntimeError("the connection lookup failed")] * 2000
    wait = wait_with(room, now, Question(**{**QUESTION.__dict__, "deadline_ms": None}))
    delays = [wait.poll(room) for _ in range(2000)]  # type: ignore[arg-type]
    assert delays[-1] == wait_module.MAX_ERROR_BACKOFF and "lookup failed" in str(wait.last_error)


def test_a_permanent_error_ends_the_wait_as_an_error() -> None:
    room, now = FakeRoom(), [T0 / 1000 + 1]
    room.errors = [ImkitAuthenticationError(method="GET", path="/rooms/ops/messages/v3", status_code=401)]
    outcome = wait_with(room, now).poll(room)  # type: ignore[arg-type]
    assert isinstance(outcome, Outcome) and outcome.status == "error" and "401" in str(outcome.error)


def test_run_waits_with_the_injected_sleep(sleeps: list[float]) -> None:
    room, now = FakeRoom(), [T0 / 1000 + 1]
    room.errors = [ImkitConnectionError("GET", "/x", "reset", maybe_delivered=False)]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds
        if len(sleeps) == 2:
            room.messages.append(msg("reject", sender="bob", at=int(now[0] * 1000)))

    outcome = wait_with(room, now).run(room, sleep=sleep)  # type: ignore[arg-type]
    assert outcome.chosen == "Reject" and sleeps == [10.0, 10.0]


def test_no_deadline_waits_on() -> None:
    room, now = FakeRoom(), [T0 / 1000 + 10**6]
    forever = Question(**{**QUESTION.__dict__, "deadline_ms": None})
    assert wait_with(room, now, forever).poll(room) == 10.0  # type: ignore[arg-type]


def test_a_slow_read_that_began_before_the_deadline_does_not_time_out() -> None:
    """The read began at 999 s (deadline 1000 s, grace 5 s) and IMKIT answered at 1006 s: a
    reply made while it ran is unread, so the wait reads again instead of timing out."""
    question = approval.Question("r", "bot", ("alice",), ("Approve",), "q", 0, deadline_ms=1_000_000)
    now = [999.0]

    class SlowRoom(FakeRoom):
        def request(self, method: str, path: str, *, params: dict[str, Any], **kw: Any) -> dict[str, Any]:
            now[0] += 7.0
            return super().request(method, path, params=params, **kw)

        def server_time(self) -> float:
            return now[0]

    room = SlowRoom()
    wait = approval.ApprovalWait(question, 10.0, clock=lambda: now[0])
    step = wait.poll(room)  # type: ignore[arg-type]
    assert isinstance(step, float)
    now[0] = 1006.0  # the next read begins at 1006 s: after the deadline's grace
    assert wait.poll(room) == approval.Outcome("timeout")  # type: ignore[arg-type]


def test_the_worker_s_wait_waits_out_a_429_as_long_as_it_asked() -> None:
    """The non-deferrable wait has no read budget: a 429 asking 60 s is read again after 60 s,
    not the 10 s interval (and never beyond the longest backoff)."""
    room, now = FakeRoom(), [T0 / 1000 + 1]
    path = "/rooms/ops/messages/v3"
    room.errors = [ImkitRateLimitError(method="GET", path=path, status_code=429, retry_after=60)]
    room.errors.append(ImkitRateLimitError(method="GET", path=path, status_code=429, retry_after=10**6))
    wait = wait_with(room, now, Question(**{**QUESTION.__dict__, "deadline_ms": None}))
    assert wait.poll(room) == 60.0  # type: ignore[arg-type]
    assert wait.poll(room) == wait_module.MAX_ERROR_BACKOFF  # type: ignore[arg-type]
