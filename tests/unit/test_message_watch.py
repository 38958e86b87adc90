"""Which messages start a pipeline, and the watch that fires once per message, in order:
MessageFilter and MessageWatch (no Airflow, no HTTP: reads built by hand)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_imkit.client.read_back import remember_own_post
from airflow_provider_imkit.exceptions import (
    ImkitAuthenticationError,
    ImkitReadBackError,
    ImkitValidationError,
)
from airflow_provider_imkit.rooms.match import (
    CURSOR_OVERLAP_MS,
    Cursor,
    Failed,
    Fired,
    MessageFilter,
    MessageWatch,
    Moved,
)
from airflow_provider_imkit.rooms.read import RoomRead

START = 1_800_000_000_000  # ms


def message(
    n: int, text: str = "rerun sales_daily", sender: str = "alice", at: int | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "_id": f"m{n}",
        "room": "ops",
        "message": text,
        "messageType": "text",
        "sender": {"_id": sender, "nickname": sender.title()},
        "createdAtMS": START + n * 1000 if at is None else at,
        **extra,
    }


def read(*items: dict[str, Any], error: Exception | None = None, complete: int | None = 0) -> RoomRead:
    complete_from = None if error is not None and complete == 0 else complete
    now = START / 1000  # IMKIT's clock agrees with the host's
    return RoomRead("ops", list(items), complete_from, now, now, error)


def new_filter(**kwargs: Any) -> MessageFilter:
    return MessageFilter.build("ops", **{"senders": ["alice", "bob"], **kwargs})


def watch(clock: list[float] | None = None, **kwargs: Any) -> MessageWatch:
    now = clock if clock is not None else [START / 1000]
    return MessageWatch(kwargs.pop("filter", new_filter()), 10.0, clock=lambda: now[0], **kwargs)


def fired(events: Any) -> list[str]:
    return [e.payload["message"]["_id"] for e in events if isinstance(e, Fired)]


# -- the filter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"pattern": "rerun (?P<dag"}, "pattern", "not a valid regular expression"),
        ({"pattern": 42}, "pattern", "regular expression string"),
        ({"senders": None}, "senders", "at least one"),
        ({"senders": []}, "senders", "at least one"),
        ({"senders": ""}, "senders", "at least one"),
        ({"senders": ["alice", " bob"]}, "senders[1]", "whitespace"),
        ({"senders": 7}, "senders", "user id"),
        ({"message_types": []}, "message_types", "at least one"),
        ({"message_types": ["text", "recall"]}, "message_types[1]", "recalled"),
        ({"room": ""}, "room", "non-empty"),
    ],
)
def test_bad_arguments_name_their_field(kwargs: dict[str, Any], field: str, words: str) -> None:
    room = kwargs.pop("room", "ops")
    with pytest.raises(ImkitValidationError) as caught:
        MessageFilter.build(room, **{"senders": ["alice"], **kwargs})
    assert caught.value.field == field and words in caught.value.problem


@pytest.mark.parametrize(
    "senders", [["alice", "bob"], ("alice", "bob"), "alice,bob", '["alice", "bob"]', "['alice','bob']"]
)
def test_senders_take_the_list_forms_of_mentions(senders: Any) -> None:
    assert MessageFilter.build("ops", senders=senders).senders == ("alice", "bob")


def test_the_payload_and_named_groups() -> None:
    rule = new_filter(pattern=r"^rerun (?P<dag_id>\w+)(?: (?P<date>\d{4}-\d{2}-\d{2}))?$")
    assert rule.match(message(1, "rerun sales_daily 2026-11-30")) == {
        "message": {
            "_id": "m1",
            "room": "ops",
            "message": "rerun sales_daily 2026-11-30",
            "messageType": "text",
            "sender": "alice",
            "createdAtMS": START + 1000,
        },
        "groups": {"dag_id": "sales_daily", "date": "2026-11-30"},
    }
    assert rule.match(message(2, "rerun sales_daily"))["groups"] == {"dag_id": "sales_daily", "date": None}  # type: ignore[index]
    assert rule.match(message(3, "please rerun sales_daily")) is None  # anchored by the pattern
    assert new_filter(pattern="rerun").match(message(4, "please rerun it")) is not None  # re.search


def test_what_never_counts() -> None:
    rule = new_filter()
    assert rule.match(message(1, sender="mallory")) is None  # not an allowed sender
    assert rule.match({**message(2), "messageType": "recall", "message": ""}) is None
    assert rule.match(message(3, isDeleted=True)) is None
    assert rule.match({**message(4), "messageType": "image"}) is None  # only text by default
    assert new_filter(message_types=["text", "image"]).match({**message(5), "messageType": "image"})
    assert new_filter(pattern="x").match({**message(6), "message": {"json": "x"}}) is None  # no text
    assert rule.match({**message(7), "sender": "alice"}) is not None  # an id, as POST results give
    remember_own_post("m8")
    assert rule.match(message(8)) is None  # the provider's own post, even as an allowed sender


def bad_key() -> ImkitAuthenticationError:
    return ImkitAuthenticationError(
        method="GET", path="/rooms/ops/messages/v3", status_code=401, rm="bad key"
    )


# -- the watch ----------------------------------------------------------------------------------


def test_each_new_matching_message_fires_once_in_order() -> None:
    w = watch()
    events, delay = w.take(read(message(2), message(1, sender="mallory"), message(3)))
    assert fired(events) == ["m2", "m3"] and delay == 10.0
    # The next read overlaps the last: nothing fires twice, the new one does.
    events, _ = w.take(read(message(2), message(3), message(9)))
    assert fired(events) == ["m9"]
    assert w.since_ms == START + 9000 - CURSOR_OVERLAP_MS  # the overlap before the newest


def test_messages_from_before_the_start_never_fire() -> None:
    w = watch()
    events, _ = w.take(read(message(-3), message(0), message(1)))
    assert fired(events) == ["m1"]  # created after the start (ms) only


def test_a_message_stored_late_with_an_earlier_time_fires_once() -> None:
    w = watch()
    assert fired(w.take(read(message(10)))[0]) == ["m10"]
    late = message(9, at=START + 10_000 - 3_000)  # within the overlap, seen only now
    assert fired(w.take(read(late, message(10)))[0]) == ["m9"]
    assert fired(w.take(read(late, message(10)))[0]) == []


def test_each_event_carries_the_cursor_that_counts_it() -> None:
    w = watch()
    events, _ = w.take(read(message(1), message(2)))
    first, second = events
    assert isinstance(first, Fired) and isinstance(second, Fired)
    assert dict(first.cursor.fired) == {"m1": START + 1000}
    assert dict(second.cursor.fired) == {"m1": START + 1000, "m2": START + 2000}
    # A restart from the first event's cursor fires the second, not the first.
    again = watch(cursor=Cursor.from_json(first.cursor.to_json()))
    assert fired(again.take(read(message(1), message(2)))[0]) == ["m2"]


def test_fired_ids_older_than_the_overlap_are_forgotten() -> None:
    w = watch()
    w.take(read(message(1)))
    events, _ = w.take(read(message(1), message(30)))
    assert isinstance(events[0], Fired)
    assert dict(events[0].cursor.fired) == {"m30": START + 30_000}


def test_the_sensor_form_fires_once_and_ends() -> None:
    w = watch(start_ms=START + 1000, once=True)
    events, delay = w.take(read(message(1), message(2), message(3)))
    assert fired(events) == ["m2"] and delay is None


def test_a_cursor_with_no_event_is_saved_now_and_then() -> None:
    now = [START / 1000]
    w = watch(clock=now)
    assert w.take(read(message(1, sender="mallory")))[0] == []  # moved, but just saved
    now[0] += 61
    (moved,), _ = w.take(read(message(2, sender="mallory")))
    assert isinstance(moved, Moved) and moved.cursor.newest_ms == START + 2000


def test_read_errors_back_off_and_a_watcher_never_ends() -> None:
    w = watch()
    flaky = ImkitReadBackError("network")
    flaky.transient = True
    assert w.take(read(error=flaky)) == ((), 10.0)
    assert w.take(read(error=flaky)) == ((), 20.0)
    assert w.take(read(error=bad_key())) == ((), 300.0)
    assert fired(w.take(read(message(1)))[0]) == ["m1"]  # the key was fixed: it goes on
    sensor = watch(once=True)
    (failed,), delay = sensor.take(read(error=bad_key()))
    assert isinstance(failed, Failed) and "401" in failed.error and delay is None


def test_a_room_too_busy_to_read_from_the_cursor_skips_ahead_with_a_warning() -> None:
    warnings: list[str] = []

    class Log:
        def warning(self, text: str, *args: Any) -> None:
            warnings.append(text % args)

    w = watch(log=Log())
    busy = ImkitReadBackError("more than 2000 messages")
    busy.transient = False
    events, _ = w.take(read(message(50), message(51), error=busy, complete=START + 50_000))
    assert fired(events) == ["m50", "m51"]
    assert "too many messages" in warnings[0]
    # Busy again, from within the overlap: what fired stays fired.
    events, _ = w.take(read(message(51), message(52), error=busy, complete=START + 51_000))
    assert fired(events) == ["m52"]


def test_a_start_on_the_host_clock_moves_to_imkit_clock_on_the_first_read() -> None:
    now = [START / 1000]
    behind = watch(clock=now)  # IMKIT's clock is 10 s behind the host's
    first = RoomRead("ops", [], START, START / 1000 - 10, START / 1000 - 10)
    assert behind.take(first) == ((), 0.0)  # the start moved before what was read: read again
    assert behind.since_ms == START - 10_000
    again = RoomRead("ops", [message(-5)], START - 10_000, START / 1000 - 10, START / 1000 - 10)
    assert fired(behind.take(again)[0]) == ["m-5"]  # created 5 s after the start, on IMKIT's clock
    ahead = watch(clock=now)  # IMKIT is 10 s ahead: the start moves later, the read covers it
    read_ahead = RoomRead("ops", [message(5), message(12)], START, START / 1000 + 10, START / 1000 + 10)
    assert fired(ahead.take(read_ahead)[0]) == ["m12"]


def test_cursors_round_trip_and_garbage_is_no_cursor() -> None:
    cursor = Cursor(1, 2, (("m1", 2),))
    assert Cursor.from_json(cursor.to_json()) == cursor
    for garbage in (
        None,
        "x",
        {"start_ms": "1", "newest_ms": 2},
        {"start_ms": 1, "newest_ms": 2, "fired": [1]},
    ):
        assert Cursor.from_json(garbage) is None
