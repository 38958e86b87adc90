"""Shared room readers and the read budget: one read per room per interval for every wait on
it, from the oldest cursor; reads in the readers' own threads; the budget spread evenly and
slowed by 429s; waits that end leave, the last stops the reader. No real waiting: the readers'
clock and sleep are fake (tests.conftest's reader_time), the client answers from lists."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import pytest

from airflow_provider_imkit.decisions import ApprovalWait, Outcome, Question
from airflow_provider_imkit.exceptions import (
    ImkitAuthenticationError,
    ImkitConfigurationError,
    ImkitConnectionError,
    ImkitRateLimitError,
)
from airflow_provider_imkit.rooms import readers as readers_module
from airflow_provider_imkit.rooms.budget import MIN_READS_PER_MINUTE, ReadBudget, reads_per_minute
from airflow_provider_imkit.rooms.read import RoomRead, read_room
from airflow_provider_imkit.rooms.readers import RoomReaders, room_readers

if TYPE_CHECKING:
    from airflow_provider_imkit.client import ImkitClient

NOW_MS = int(time.time() * 1000)
#: The fast_loop fixture: runs a coroutine in an event loop whose time only moves when all waits.
Run = Callable[[Coroutine[Any, Any, Any]], Any]


def msg(text: str, room: str, sender: str = "alice", at: int | None = None, **extra: Any) -> dict[str, Any]:
    created = NOW_MS + 1000 if at is None else at
    return {"_id": f"m{created}-{text}", "room": room, "message": text, "messageType": "text",
            "sender": {"_id": sender}, "createdAtMS": created, **extra}  # fmt: skip


class FakeImkit:
    """Answers GET /rooms/{room}/messages/v3 from per-room lists (newest first, afterTime and
    beforeMessage honoured), or raises a room's queued errors first; records every call with
    the loop time it was made at and the thread it was made in."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[dict[str, Any]]] = {}
        self.errors: dict[str, list[Exception]] = {}
        self.calls: list[tuple[str, dict[str, Any], str, float]] = []
        self.closed = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    def request(self, method: str, path: str, *, params: dict[str, Any], **_: Any) -> dict[str, Any]:
        room = path.split("/")[2]
        at = self.loop.time() if self.loop is not None else 0.0
        self.calls.append((room, dict(params), threading.current_thread().name, at))
        if self.errors.get(room):
            raise self.errors[room].pop(0)
        data = [m for m in self.rooms.get(room, []) if m["createdAtMS"] >= params["afterTime"]][::-1]
        if "beforeMessage" in params:
            ids = [m["_id"] for m in data]
            data = data[ids.index(params["beforeMessage"]) + 1 :]
        return {"totalCount": len(data), "data": data[: params["limit"]]}

    def reads(self, room: str | None = None) -> list[float]:
        """When each read (its first page) of ``room`` (every room: None) was made."""
        return [at for r, params, _, at in self.calls if room in (None, r) and "beforeMessage" not in params]

    def close(self) -> None:
        self.closed += 1

    def maker(self) -> ImkitClient:
        """This fake as the readers' client (it has what reading a room needs)."""
        return cast("ImkitClient", self)


def question(room: str, n: int = 0, asked_at: int = NOW_MS, **extra: Any) -> Question:
    return Question(room=room, sender="bot", approvers=("alice", "bob"), options=("Approve", "Reject"),
                    message_id=f"q{room}{n}", asked_at_ms=asked_at, **extra)  # fmt: skip


async def wait_all(
    imkit: FakeImkit,
    waits: list[Any],
    budget: float = 300,
    conn_id: str = "imkit_default",
    people: dict[float, Callable[[], None]] | None = None,
) -> list[tuple[float, Any]]:
    """Every wait's first event (or the error it raised) and the loop time it came at, with
    ``people`` acting at their loop times."""
    loop = asyncio.get_running_loop()
    imkit.loop = loop
    for at, act in (people or {}).items():
        loop.call_at(at, act)
    readers = room_readers()

    async def one(wait: Any) -> tuple[float, Any]:
        room = wait.question.room if isinstance(wait, ApprovalWait) else "ops"
        async with readers.watch(conn_id, room, wait, make_client=imkit.maker, reads_per_minute=budget) as ev:
            try:
                event = await ev.next()
            except Exception as exc:
                event = exc
            return loop.time(), event

    return list(await asyncio.gather(*(one(wait) for wait in waits)))


def test_many_waits_in_one_room_share_one_read_per_interval(fast_loop: Run) -> None:
    imkit = FakeImkit()
    waits = [ApprovalWait(question("ops", n, asked_at=NOW_MS + n), 10.0) for n in range(100)]

    def reply() -> None:  # one reply answers every question (none is a reply to a message)
        imkit.rooms["ops"] = [msg("Approve", "ops", at=NOW_MS + 500)]

    results = fast_loop(wait_all(imkit, waits, people={25.0: reply}))
    assert {(o.status, o.chosen, o.by) for _, o in results} == {("chosen", "Approve", "alice")}
    assert imkit.reads("ops") == [0.0, 10.0, 20.0, 30.0]  # not 400: each read served all 100
    assert {at for at, _ in results} == {30.0}
    # From the oldest question on, in the readers' own threads (never the event loop's).
    assert imkit.calls[0][1]["afterTime"] == NOW_MS - 1
    assert {thread for _, _, thread, _ in imkit.calls} <= {f"imkit-room-reader_{i}" for i in range(4)}
    readers_module.shutdown_pool()  # the client is closed in the pool
    assert imkit.closed == 1  # the last wait stopped the reader: its client's sockets closed


def test_each_room_has_its_reader_and_every_read_is_a_budget_slot(fast_loop: Run) -> None:
    """20 rooms at a 10 s interval want 120 reads a minute; a budget of 60 stretches each
    room's interval evenly to 20 s (rooms / budget minutes), one slot a second."""
    imkit = FakeImkit()
    rooms = [f"r{i}" for i in range(20)]
    waits = [ApprovalWait(question(room), 10.0) for room in rooms]

    def reply() -> None:
        for room in rooms:
            imkit.rooms[room] = [msg("2", room, sender="bob")]

    results = fast_loop(wait_all(imkit, waits, budget=60, people={60.5: reply}))
    assert {o.chosen for _, o in results} == {"Reject"}
    reads = imkit.reads()
    gaps = [b - a for a, b in itertools.pairwise(reads)]
    assert min(gaps) >= 1.0 - 1e-6  # 60 a minute, never two at once
    per_room = [imkit.reads(room) for room in rooms]
    intervals = [b - a for times in per_room for a, b in itertools.pairwise(times)]
    assert min(intervals) >= 20.0 - 1e-6 and max(intervals) < 20.5
    assert max(at for at, _ in results) <= 60.5 + 20.5  # each decided at its room's next read


def test_a_wait_that_joins_later_is_read_for_within_its_interval(fast_loop: Run) -> None:
    imkit = FakeImkit()
    imkit.rooms["ops"] = [msg("1", "ops")]

    async def scenario() -> tuple[float, Outcome, list[float]]:
        imkit.loop = asyncio.get_running_loop()
        readers = room_readers()
        nobody = ApprovalWait(replace(question("ops", 1), approvers=("carol",)), 60.0)
        fast = ApprovalWait(question("ops", 2), 5.0)
        async with readers.watch("c", "ops", nobody, make_client=imkit.maker, reads_per_minute=300):
            await asyncio.sleep(1)  # the reader read at once, and naps 60 s
            async with readers.watch("c", "ops", fast, make_client=imkit.maker, reads_per_minute=300) as ev:
                outcome: Outcome = await ev.next()
                return imkit.loop.time(), outcome, imkit.reads()

    at, outcome, reads = fast_loop(scenario())
    assert (at, outcome.chosen, reads) == (6.0, "Approve", [0.0, 6.0])  # joined at 1 s: read 5 s on


def test_a_429_slows_the_reads_and_never_ends_a_wait(fast_loop: Run) -> None:
    imkit = FakeImkit()
    limited = ImkitRateLimitError(
        method="GET", path="/rooms/ops/messages/v3", status_code=429, retry_after=30
    )
    imkit.errors["ops"] = [limited, limited]

    def reply() -> None:
        imkit.rooms["ops"] = [msg("Approve", "ops")]

    results = fast_loop(
        wait_all(imkit, [ApprovalWait(question("ops"), 10.0)], budget=120, people={1.0: reply})
    )
    assert results[0][1].chosen == "Approve"
    assert imkit.reads("ops") == [0.0, 30.0, 60.0]  # each 429 paused reads for the 30 s it asked


def test_read_budget_halves_on_429_pauses_and_recovers() -> None:
    now = [0.0]
    budget = ReadBudget(300, clock=lambda: now[0])
    assert [budget.reserve() for _ in range(3)] == pytest.approx([0.0, 0.2, 0.4])
    budget.limited(retry_after=5)
    assert budget.rate == 150 and budget.paused_until == 5.0
    assert budget.reserve() == 5.0 and budget.reserve() == pytest.approx(5.4)
    for _ in range(10):
        budget.limited(retry_after=None)
    assert budget.rate == MIN_READS_PER_MINUTE and budget.paused_until == pytest.approx(10.0)
    for _ in range(20):
        budget.succeeded()
    assert budget.rate == 300
    budget.set_budget(100)
    assert budget.rate == 100


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5", True, ""])
def test_a_bad_budget_names_the_option(value: Any) -> None:
    with pytest.raises(ImkitConfigurationError, match=r"\[imkit\] approval_reads_per_minute"):
        reads_per_minute(value)
    assert reads_per_minute(" 120 ") == 120


def test_read_errors_back_off_and_a_permanent_one_ends_every_wait(fast_loop: Run) -> None:
    imkit = FakeImkit()
    flaky = ImkitConnectionError("GET", "/rooms/ops/messages/v3", "reset", maybe_delivered=False)
    denied = ImkitAuthenticationError(method="GET", path="/rooms/ops/messages/v3", status_code=401)
    imkit.errors["ops"] = [flaky, flaky, denied]  # the fake client does not retry: one each read
    waits = [ApprovalWait(question("ops", n), 10.0) for n in range(3)]
    results = fast_loop(wait_all(imkit, waits))
    assert [o.status for _, o in results] == ["error"] * 3 and "401" in str(results[0][1].error)
    assert imkit.reads("ops") == [0.0, 10.0, 30.0]  # backing off: 10 s, then 20 s


def test_a_room_too_busy_for_the_oldest_wait_still_serves_the_newer_ones(fast_loop: Run) -> None:
    """After a restart, a wait from long ago finds 2,000+ messages since its question: it ends
    in an error (reading again meets them again); a wait asked after them decides."""
    imkit = FakeImkit()
    old = ApprovalWait(question("ops", 1, asked_at=NOW_MS - 10_000_000), 10.0)
    chatter = [msg(f"c{i}", "ops", sender="carol", at=NOW_MS - 9_000_000 + i) for i in range(2100)]
    imkit.rooms["ops"] = [*chatter, msg("Reject", "ops", sender="bob", at=NOW_MS + 10)]
    new = ApprovalWait(question("ops", 2, asked_at=NOW_MS), 10.0)
    (_, too_busy), (_, decided) = fast_loop(wait_all(imkit, [old, new]))
    assert too_busy.status == "error" and "too busy" in str(too_busy.error)
    assert (decided.status, decided.chosen) == ("chosen", "Reject")
    assert len(imkit.reads()) == 1


def test_a_failing_connection_lookup_is_waited_out(fast_loop: Run) -> None:
    imkit = FakeImkit()
    imkit.rooms["ops"] = [msg("Approve", "ops")]
    built: list[int] = []

    def make_client() -> ImkitClient:
        built.append(1)
        if len(built) < 3:
            raise RuntimeError("The conn_id `imkit_default` isn't defined")
        return imkit.maker()

    async def scenario() -> tuple[float, Outcome]:
        imkit.loop = asyncio.get_running_loop()
        wait = ApprovalWait(question("ops"), 10.0)
        async with room_readers().watch(
            "c", "ops", wait, make_client=make_client, reads_per_minute=300
        ) as ev:
            outcome: Outcome = await ev.next()
            return imkit.loop.time(), outcome

    at, outcome = fast_loop(scenario())
    assert outcome.chosen == "Approve" and len(built) == 3
    assert at == 30.0  # looked up at 0, 10 and 30 s


class _Broken:
    poll_interval = 10.0
    since_ms = NOW_MS

    def take(self, read: RoomRead) -> Any:
        raise ZeroDivisionError("a bug")


def test_a_listener_s_bug_ends_that_listener_only_and_each_decides_in_its_context(fast_loop: Run) -> None:
    imkit = FakeImkit()
    imkit.rooms["ops"] = [msg("Approve", "ops")]
    which: contextvars.ContextVar[str] = contextvars.ContextVar("which", default="none")
    seen: list[str] = []

    class Wait(ApprovalWait):
        def take(self, read: RoomRead) -> Any:
            seen.append(which.get())
            return super().take(read)

    async def scenario() -> list[Any]:
        readers = room_readers()

        async def watch(listener: Any, name: str) -> Any:
            which.set(name)  # as the triggerer binds a trigger's id for its log lines
            async with readers.watch(
                "c", "ops", listener, make_client=imkit.maker, reads_per_minute=300
            ) as ev:
                try:
                    return await ev.next()
                except ZeroDivisionError as exc:
                    return exc

        return list(
            await asyncio.gather(watch(_Broken(), "broken"), watch(Wait(question("ops"), 10.0), "t-7"))
        )

    broken, outcome = fast_loop(scenario())
    assert isinstance(broken, ZeroDivisionError) and outcome.chosen == "Approve"
    assert seen == ["t-7"]


def test_waits_cancelled_mid_nap_leave_and_the_last_stops_the_reader(fast_loop: Run) -> None:
    imkit = FakeImkit()

    async def scenario() -> RoomReaders:
        imkit.loop = asyncio.get_running_loop()
        readers = room_readers()

        async def one() -> None:
            wait = ApprovalWait(question("ops"), 10.0)
            async with readers.watch("c", "ops", wait, make_client=imkit.maker, reads_per_minute=300) as ev:
                await ev.next()

        tasks = [asyncio.ensure_future(one()) for _ in range(3)]
        await asyncio.sleep(15)  # two reads: at 0 and 10 s
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(1)
        return readers

    readers = fast_loop(scenario())
    assert readers.readers == {} and imkit.reads() == [0.0, 10.0]
    readers_module.shutdown_pool()  # the client is closed in the pool: done once it stopped
    assert imkit.closed == 1


def test_read_room_without_a_client_reports_the_lookup_failure() -> None:
    failure = RuntimeError("no connection")
    read = read_room(None, "ops", NOW_MS, failure=failure)
    assert read.error is failure and read.items == [] and not read.covers(NOW_MS)


def test_a_429_voids_the_slots_given_before_it_and_its_pause_is_capped(fast_loop: Run) -> None:
    """Five rooms at a budget of 60 a minute hold slots at 0..4 s; the read at 0 s meets a 429
    asking 10 s: no room is read before 10 s, and then every 2 s (the halved rate)."""
    imkit = FakeImkit()
    limited = ImkitRateLimitError(method="GET", path="/rooms/r0/messages/v3", status_code=429, retry_after=10)
    imkit.errors["r0"] = [limited]
    rooms = [f"r{i}" for i in range(5)]

    def reply() -> None:
        for room in rooms:
            imkit.rooms[room] = [msg("1", room)]

    results = fast_loop(
        wait_all(imkit, [ApprovalWait(question(r), 10.0) for r in rooms], budget=60, people={0.5: reply})
    )
    assert {o.chosen for _, o in results} == {"Approve"}
    reads = imkit.reads()
    assert reads[0] == 0.0 and [t for t in reads if 0 < t < 10] == []
    assert min(b - a for a, b in itertools.pairwise(reads[1:])) >= 2.0 - 1e-6
    budget = ReadBudget(60, clock=lambda: 0.0)
    budget.limited(retry_after=86_400)  # a day asked for: waits must still reach their deadlines
    assert budget.paused_until == 300.0 and budget.generation == 1
    budget.charge(5)  # a five-page read: four more slots
    assert budget.reserve() == pytest.approx(300.0 + 4 * 2.0)


def test_a_wait_joining_during_a_read_is_read_for_next(fast_loop: Run) -> None:
    """The second wait joins while the first read is in flight (in a reader thread): it is not
    handed that read's result, and the next read, a poll interval on, decides it."""
    imkit = FakeImkit()
    imkit.rooms["ops"] = [msg("Reject", "ops", sender="bob")]
    gate, started = threading.Event(), asyncio.Event()
    plain = imkit.request

    def blocking(method: str, path: str, *, params: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if len(imkit.calls) == 0:
            assert imkit.loop is not None
            imkit.loop.call_soon_threadsafe(started.set)
            gate.wait(30)
        return plain(method, path, params=params, **kw)

    imkit.request = blocking  # type: ignore[method-assign]

    async def scenario() -> list[tuple[float, Any]]:
        imkit.loop = asyncio.get_running_loop()
        readers = room_readers()
        first = ApprovalWait(replace(question("ops", 1), approvers=("carol",)), 10.0)
        second = ApprovalWait(question("ops", 2), 10.0)

        async def one(wait: ApprovalWait) -> tuple[float, Any]:
            async with readers.watch("c", "ops", wait, make_client=imkit.maker, reads_per_minute=300) as ev:
                event = await ev.next()
                assert imkit.loop is not None
                return imkit.loop.time(), event

        task = asyncio.ensure_future(one(first))
        await started.wait()
        joined = asyncio.ensure_future(one(second))
        await asyncio.sleep(0)
        gate.set()
        result = await joined
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return [result]

    [(at, outcome)] = fast_loop(scenario())
    assert (at, outcome.chosen) == (10.0, "Reject") and imkit.reads() == [0.0, 10.0]


class _Quits:
    poll_interval = 10.0
    since_ms = NOW_MS

    def take(self, read: RoomRead) -> Any:
        return ("one", "two"), None  # two events, then done


def test_a_listener_that_is_done_ends_its_subscription(fast_loop: Run) -> None:
    imkit = FakeImkit()

    async def scenario() -> list[Any]:
        async with room_readers().watch(
            "c", "ops", _Quits(), make_client=imkit.maker, reads_per_minute=1
        ) as ev:
            events = [event async for event in ev]
            with pytest.raises(StopAsyncIteration):
                await ev.next()
            return events

    assert fast_loop(scenario()) == ["one", "two"]


def test_the_budget_is_read_from_the_imkit_section(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_imkit.get_provider_info import get_provider_info
    from airflow_provider_imkit.triggers.imkit import approval_reads_per_minute

    info: Any = get_provider_info()
    assert info["config"]["imkit"]["options"]["approval_reads_per_minute"]["default"] == "300"
    assert approval_reads_per_minute() == 300
    monkeypatch.setenv("AIRFLOW__IMKIT__APPROVAL_READS_PER_MINUTE", "120")
    assert approval_reads_per_minute() == 120
    monkeypatch.setenv("AIRFLOW__IMKIT__APPROVAL_READS_PER_MINUTE", "lots")
    with pytest.raises(ImkitConfigurationError, match=r"\[imkit\] approval_reads_per_minute.*'lots'"):
        approval_reads_per_minute()


def test_a_401_makes_the_next_read_look_the_connection_up_again(fast_loop: Run) -> None:
    """A rotated key: the wait that met the 401 ends; the connection's other readers build a
    new client (a fresh lookup) at their next read instead of keeping the old key."""
    imkit = FakeImkit()
    imkit.errors["r1"] = [
        ImkitAuthenticationError(method="GET", path="/rooms/r1/messages/v3", status_code=401)
    ]
    built: list[int] = []

    def make_client() -> ImkitClient:
        built.append(1)
        return imkit.maker()

    def reply() -> None:
        imkit.rooms["r2"] = [msg("Approve", "r2")]

    async def scenario() -> list[Outcome]:
        imkit.loop = asyncio.get_running_loop()
        imkit.loop.call_at(15.0, reply)
        readers = room_readers()

        async def one(room: str) -> Outcome:
            wait = ApprovalWait(question(room), 10.0)
            async with readers.watch("c", room, wait, make_client=make_client, reads_per_minute=300) as ev:
                outcome: Outcome = await ev.next()
                return outcome

        return list(await asyncio.gather(one("r1"), one("r2")))

    denied, approved = fast_loop(scenario())
    assert denied.status == "error" and approved.chosen == "Approve"
    readers_module.shutdown_pool()
    assert len(built) == 2 and imkit.closed == 2  # the stale client, then the last one
