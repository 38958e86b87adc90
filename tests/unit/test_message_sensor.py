"""ImkitMessageSensor's parts that need no room: arguments checked at parse time, the start it
counts from, the deferral it makes, and what comes back from the triggerer."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_imkit.exceptions import ImkitRoomReadError, ImkitValidationError
from airflow_provider_imkit.sensors.imkit import ImkitMessageSensor, first_try_started_ms
from airflow_provider_imkit.triggers.imkit import ImkitMessageSensorTrigger

TRY_START = datetime(2026, 12, 1, 9, 0, 5, tzinfo=UTC)
RUN_START = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)


def sensor(**kwargs: Any) -> ImkitMessageSensor:
    return ImkitMessageSensor(**{"task_id": "wait", "room": "ops", "senders": ["alice"], **kwargs})


def context(try_number: int = 1, first_reschedule: datetime | None = None) -> Any:
    ti = SimpleNamespace(try_number=try_number, start_date=TRY_START)
    if first_reschedule is not None:
        ti.get_first_reschedule_date = lambda context: first_reschedule
    return {"ti": ti, "dag_run": SimpleNamespace(start_date=RUN_START)}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pattern": "files ("}, "pattern"),
        ({"senders": []}, "senders"),
        ({"senders": "alice bob"}, "senders[0]"),
        ({"room": " ops"}, "room"),
        ({"message_types": ["recall"]}, "message_types[0]"),
        ({"poll_interval": 0}, "poll_interval"),
    ],
)
def test_bad_arguments_fail_at_parse_time_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ImkitValidationError) as caught:
        sensor(**kwargs)
    assert caught.value.field == field


def test_templated_values_are_checked_after_rendering_the_others_at_parse_time() -> None:
    waiting = sensor(room="{{ params.room }}", pattern="^{{ params.word }}$", senders="{{ params.who }}")
    assert tuple(waiting.template_fields) == ("room", "pattern", "senders")
    assert waiting.deferrable is True and waiting.poke_interval == 10.0
    with pytest.raises(ImkitValidationError, match="'pattern'"):
        sensor(room="{{ params.room }}", pattern="files (")  # one templated field checks no fewer
    with pytest.raises(ImkitValidationError, match="'senders'"):
        sensor(pattern="{{ params.word }}", senders=[])


def test_it_counts_from_the_first_try() -> None:
    assert first_try_started_ms(context()) == int(TRY_START.timestamp() * 1000)
    assert first_try_started_ms(context(try_number=2)) == int(RUN_START.timestamp() * 1000)
    first = datetime(2026, 12, 1, 9, 0, 2, tzinfo=UTC)
    assert first_try_started_ms(context(first_reschedule=first), reschedule=True) == int(
        first.timestamp() * 1000
    )


def test_deferrable_defers_to_the_message_trigger_with_the_start_and_timeout() -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    waiting = sensor(pattern="go", timeout=600, poll_interval=2)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, ImkitMessageSensorTrigger)
    assert trigger.serialize()[1] == {
        "room": "ops",
        "pattern": "go",
        "senders": ["alice"],
        "message_types": ["text"],
        "poll_interval": 2.0,
        "imkit_conn_id": "imkit_default",
        "since_ms": int(TRY_START.timestamp() * 1000),
    }
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() == 600


def test_what_the_triggerer_hands_back() -> None:
    payload = {"message": {"_id": "m1", "room": "ops", "sender": "alice"}, "groups": {}}
    assert sensor().execute_complete({}, payload) == payload
    with pytest.raises(ImkitRoomReadError, match="ROOM_NOT_FOUND"):
        sensor().execute_complete(
            {}, {"error": "IMKIT GET /rooms/ops/messages/v3 failed: 404 ROOM_NOT_FOUND"}
        )
