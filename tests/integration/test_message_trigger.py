"""ImkitMessageTrigger over real HTTP against the sandbox: what fires and what never does,
order, restarts (with 3.3's asset state store, within one triggerer process, and a new one),
one reader shared with an approval wait, serialization."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import pytest

from airflow_provider_imkit.exceptions import ImkitValidationError
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
from airflow_provider_imkit.triggers import cursors
from airflow_provider_imkit.triggers.imkit import (
    ImkitApprovalTrigger,
    ImkitMessageSensorTrigger,
    ImkitMessageTrigger,
)
from tests.integration.test_approval_sandbox import ask

HISTORY = "/rooms/ops/messages/v3"
COMMAND = r"^rerun (?P<dag_id>\w+)(?: (?P<date>\d{4}-\d{2}-\d{2}))?$"
Run = Callable[[Coroutine[Any, Any, Any]], Any]


class StateStore:
    """Airflow 3.3's asset state store as a trigger sees it (one asset): aget / aset."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


@pytest.fixture(autouse=True)
def no_kept_cursors() -> None:
    cursors._KEPT.clear()  # each test is a new triggerer process


def trigger(**kwargs: Any) -> ImkitMessageTrigger:
    return ImkitMessageTrigger(
        "ops", **{"pattern": COMMAND, "senders": ["alice", "bob"], "poll_interval": 5, **kwargs}
    )


async def events(
    watcher: ImkitMessageTrigger, count: int, people: Mapping[float, Callable[[], object]] | None = None
) -> list[tuple[float, dict[str, Any]]]:
    """The watcher's first ``count`` events and their loop times; ``people`` act at their times.
    Stopping the watcher after them is what the triggerer does when it stops one (a restart)."""
    loop = asyncio.get_running_loop()
    for at, act in (people or {}).items():
        loop.call_at(at, act)
    got: list[tuple[float, dict[str, Any]]] = []
    run: Any = watcher.run()
    try:
        async for event in run:
            got.append((loop.time(), dict(event.payload)))
            if len(got) == count:
                break
    finally:
        await run.aclose()
    return got


async def nothing_for(watcher: ImkitMessageTrigger, seconds: float) -> None:
    """The watcher fires nothing for ``seconds`` of loop time (its reads go on)."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(events(watcher, 1), seconds)


def texts(got: list[tuple[float, dict[str, Any]]]) -> list[str]:
    return [payload["message"]["message"] for _, payload in got]


def test_one_event_per_matching_message_in_order_and_nothing_else(
    sandbox: ImkitSandbox, fast_loop: Run
) -> None:
    sandbox.post_as("alice", "ops", "rerun before_the_start")  # before the watcher: never fires

    def chatter() -> None:
        sandbox.post_as("bob", "ops", "what's up?")  # no command
        sandbox.add_user("mallory")
        sandbox.post_as("mallory", "ops", "rerun everything")  # not an allowed sender
        recalled = sandbox.post_as("alice", "ops", "rerun oops")
        sandbox.recall("ops", recalled["_id"])  # recalled before any read: never fires
        sandbox.post_as("alice", "ops", "rerun sales_daily 2026-11-30")
        with ImkitHook() as hook:  # the provider's own post, as an allowed sender
            hook.send_message(room="ops", sender="bob", message="rerun by_the_provider")
        sandbox.post_as("bob", "ops", "rerun billing")
        sandbox.post_as("alice", "ops", "rerun sales_daily 2026-11-30")  # a second message: fires too

    got = fast_loop(events(trigger(), 3, {1.0: chatter}))
    assert texts(got) == ["rerun sales_daily 2026-11-30", "rerun billing", "rerun sales_daily 2026-11-30"]
    first = got[0][1]
    assert set(first) == {"message", "groups"}
    assert set(first["message"]) == {"_id", "room", "message", "messageType", "sender", "createdAtMS"}
    assert (first["message"]["sender"], first["message"]["room"]) == ("alice", "ops")
    assert first["groups"] == {"dag_id": "sales_daily", "date": "2026-11-30"}
    assert got[1][1]["groups"] == {"dag_id": "billing", "date": None}
    assert len({payload["message"]["_id"] for _, payload in got}) == 3
    assert all(at <= 1.0 + 5 + 1 for at, _ in got)  # within one interval of being posted


def test_read_faults_are_waited_out(sandbox: ImkitSandbox, fast_loop: Run) -> None:
    sandbox.inject(HISTORY, Fault("status", status=503), times=4)
    got = fast_loop(events(trigger(), 1, {0.5: lambda: sandbox.post_as("bob", "ops", "rerun billing")}))
    assert texts(got) == ["rerun billing"]


def test_a_restart_with_the_asset_state_store_fires_what_was_missed_and_nothing_twice(
    sandbox: ImkitSandbox, fast_loop: Run
) -> None:
    store = StateStore()

    async def scenario() -> list[str]:
        first = trigger()
        first.asset_state_store = store  # type: ignore[assignment]
        seen = texts(await events(first, 1, {0.5: lambda: sandbox.post_as("alice", "ops", "rerun one")}))
        sandbox.post_as("alice", "ops", "rerun two")  # while no triggerer watches
        cursors._KEPT.clear()  # a new triggerer process: only the state store remembers
        again = ImkitMessageTrigger(**trigger().serialize()[1])
        again.asset_state_store = store  # type: ignore[assignment]
        return seen + texts(await events(again, 1))

    assert fast_loop(scenario()) == ["rerun one", "rerun two"]
    (cursor,) = store.values.values()
    assert cursor["newest_ms"] == sandbox.received("ops")[-1]["createdAtMS"]


def test_without_a_state_store_the_same_process_goes_on_and_a_new_one_starts_afresh(
    sandbox: ImkitSandbox, fast_loop: Run
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        seen = texts(await events(trigger(), 1, {0.5: lambda: sandbox.post_as("alice", "ops", "rerun one")}))
        sandbox.post_as("alice", "ops", "rerun two")
        seen += texts(await events(trigger(), 1))  # stopped and started in one triggerer: goes on
        sandbox.post_as("alice", "ops", "rerun three")
        cursors._KEPT.clear()  # a new triggerer process on Airflow 3.0-3.2
        fresh = trigger()
        await nothing_for(fresh, 30)  # "rerun three" is skipped, never fired late
        loop = asyncio.get_running_loop()
        later = texts(
            await events(trigger(), 1, {loop.time() + 1: lambda: sandbox.post_as("bob", "ops", "rerun four")})
        )
        return seen, later

    seen, later = fast_loop(scenario())
    assert seen == ["rerun one", "rerun two"]
    assert later == ["rerun four"]


def test_a_watcher_and_an_approval_wait_share_one_read_per_interval(
    sandbox: ImkitSandbox, fast_loop: Run
) -> None:
    question = ask(sandbox)

    async def scenario() -> None:
        approval = ImkitApprovalTrigger(question=question.to_json(), poll_interval=5)
        watchers = [trigger(), trigger(pattern=None, senders="bob")]
        loop = asyncio.get_running_loop()
        loop.call_at(20.0, lambda: sandbox.post_as("bob", "ops", "rerun billing"))
        loop.call_at(40.0, lambda: sandbox.post_as("alice", "ops", "Approve"))
        async with asyncio.timeout(60):
            results = await asyncio.gather(
                events(watchers[0], 1), events(watchers[1], 1), approval.run().__anext__()
            )
        assert texts(results[0]) == texts(results[1]) == ["rerun billing"]
        assert results[2].payload["chosen"] == "Approve"

    before = sandbox.request_counts().get(f"GET {HISTORY}", 0)
    fast_loop(scenario())
    reads = sandbox.request_counts().get(f"GET {HISTORY}", 0) - before
    assert 8 <= reads <= 10, reads  # 40 s at one read per 5 s, for all three


def test_bad_arguments_fail_when_the_trigger_is_built() -> None:
    with pytest.raises(ImkitValidationError, match="'pattern'"):
        trigger(pattern="rerun (")
    with pytest.raises(ImkitValidationError, match="'senders'"):
        trigger(senders=[])
    with pytest.raises(ImkitValidationError, match="'poll_interval'"):
        trigger(poll_interval=0)


def test_serialized_kwargs_rebuild_the_same_trigger() -> None:
    classpath, kwargs = trigger(senders="alice, bob").serialize()
    assert classpath == "airflow_provider_imkit.triggers.imkit.ImkitMessageTrigger"
    assert kwargs == {
        "room": "ops",
        "pattern": COMMAND,
        "senders": ["alice", "bob"],
        "message_types": ["text"],
        "poll_interval": 5.0,
        "imkit_conn_id": "imkit_default",
    }
    assert ImkitMessageTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert cursors.cursor_key(kwargs) == cursors.cursor_key(ImkitMessageTrigger(**kwargs).serialize()[1])


def test_the_cursor_key_does_not_depend_on_the_order_of_senders() -> None:
    one = trigger(senders=["bob", "alice"]).serialize()[1]
    other = trigger(senders={"alice", "bob"}).serialize()[1]
    assert one == other and cursors.cursor_key(one) == cursors.cursor_key(other)


def test_a_state_store_that_cannot_be_read_is_never_overwritten(
    sandbox: ImkitSandbox, fast_loop: Run
) -> None:
    class Broken(StateStore):
        async def aget(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("the API server is restarting")

    store = Broken()
    store.values["kept"] = "untouched"

    async def scenario() -> list[str]:
        watcher = trigger()
        watcher.asset_state_store = store  # type: ignore[assignment]
        post = {5.0: lambda: sandbox.post_as("alice", "ops", "rerun one")}
        return texts(await events(watcher, 1, post))

    assert fast_loop(scenario()) == ["rerun one"]
    # No cursor was written before the first event; the event's own cursor then was.
    assert store.values["kept"] == "untouched" and len(store.values) == 2


def test_the_sensors_trigger_fires_once_and_refuses_to_watch_an_asset(
    sandbox: ImkitSandbox, fast_loop: Run
) -> None:
    before = sandbox.post_as("alice", "ops", "rerun too_early")["createdAtMS"]
    sensor_trigger = ImkitMessageSensorTrigger("ops", pattern=COMMAND, senders=["alice"], since_ms=before)
    assert (
        ImkitMessageSensorTrigger(**sensor_trigger.serialize()[1]).serialize() == sensor_trigger.serialize()
    )

    async def scenario() -> list[str]:
        post = {1.0: lambda: sandbox.post_as("alice", "ops", "rerun in_time")}
        got = texts(await events(sensor_trigger, 2, post))  # ends after one
        watching = ImkitMessageSensorTrigger("ops", senders=["alice"], since_ms=before)
        watching.asset_state_store = StateStore()  # type: ignore[assignment]
        with pytest.raises(ImkitValidationError, match="since_ms"):
            await events(watching, 1)
        return got

    assert fast_loop(scenario()) == ["rerun in_time"]
