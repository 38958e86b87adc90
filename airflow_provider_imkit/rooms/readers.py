"""Shared room readers: one reader per (connection, room) in an event loop (a triggerer's),
under one read budget per connection. Each wait (an
:class:`~airflow_provider_imkit.decisions.ApprovalWait`) is a :class:`Listener`;
:meth:`RoomReaders.watch` joins it to its room's reader (started for the first one), which
reads from the oldest listener's cursor on, once per interval (the shortest asked for), in
slots of the connection's :class:`~.budget.ReadBudget`, and hands each read to every
listener. A listener that is done leaves; the last one stops the reader.

The event loop never waits on IMKIT: reads, the connection's lookup and the decisions run in
this module's own pool (:data:`READ_THREADS` threads, not asyncio's default pool, which every
other trigger shares). Each listener decides in a copy of the context it joined from, so its
log lines reach its own task's log. No Airflow in here.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_imkit.exceptions import ImkitAuthenticationError, ImkitRateLimitError
from airflow_provider_imkit.rooms.budget import ReadBudget
from airflow_provider_imkit.rooms.read import RoomRead, read_room

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from airflow_provider_imkit.client import ImkitClient

log = logging.getLogger(__name__)

#: Threads of the readers' own pool, per process: reads, connection lookups and decisions.
READ_THREADS = 4

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def pool() -> ThreadPoolExecutor:
    """The readers' thread pool (made on first use; its threads start as reads need them)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="imkit-room-reader")
        return _pool


def shutdown_pool() -> None:
    """Stop the pool's threads (tests; a process that ends needs nothing)."""
    global _pool
    with _pool_lock:
        stopping, _pool = _pool, None
    if stopping is not None:
        stopping.shutdown(wait=True)


class Listener(Protocol):
    """What waits on a room: where its reads start, how often it wants one, what it makes of one."""

    #: Seconds between reads it wants (the reader reads at the shortest interval of its listeners).
    poll_interval: float

    @property
    def since_ms(self) -> int:
        """The messages it needs: those created at or after this (ms, IMKIT's clock)."""

    def take(self, read: RoomRead) -> tuple[Sequence[Any], float | None]:
        """Decide from a read (in a reader thread): the events it makes, and the seconds until
        it wants the next read, or None when it is done (it then leaves the reader)."""


#: What a listener made of a read: its events, and seconds until its next read (None: done).
_Taken = tuple["Sequence[Any]", "float | None"]


#: Put after a subscription's last event: its listener is done.
_END = object()


class _Failed:
    """An error for a subscription's owner, raised by :meth:`Subscription.next`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


@dataclass(eq=False)
class Subscription:
    """A listener's place on a reader: its events, in order (:meth:`next`, or ``async for``)."""

    listener: Listener
    context: contextvars.Context
    events: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    done: bool = False

    async def next(self) -> Any:
        """The next event; raises what the listener (or the reader) failed with, and
        ``StopAsyncIteration`` once the listener is done and its events are all taken."""
        event = await self.events.get()
        if event is _END:
            self.events.put_nowait(_END)  # every later call ends too
            raise StopAsyncIteration
        if isinstance(event, _Failed):
            raise event.error
        return event

    def finish(self) -> None:
        """The listener is done: no event follows those queued."""
        if not self.done:
            self.done = True
            self.events.put_nowait(_END)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        return await self.next()


@dataclass(eq=False)
class _Connection:
    """One connection's budget and shared client in one event loop."""

    conn_id: str
    budget: ReadBudget
    make_client: Callable[[], ImkitClient] | None = None
    client: ImkitClient | None = None
    readers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stale: bool = False

    def drop_client(self) -> None:
        """Never blocks (on the loop): the next read builds a new client and closes this one."""
        self.stale = True

    def get_client(self) -> ImkitClient:
        """The shared client, built on first use (in a reader thread: the lookup blocks)."""
        with self.lock:
            old = self.client if self.stale else None
            if self.client is None or self.stale:
                if self.make_client is None:
                    raise RuntimeError(f"no client for IMKIT connection {self.conn_id!r}")
                self.client, self.stale = self.make_client(), False
            client = self.client
        if old is not None:
            old.close()
        return client


class RoomReader:
    """Reads one room for every listener on it (see the module doc)."""

    def __init__(self, readers: RoomReaders, connection: _Connection, room: str) -> None:
        self.readers = readers
        self.connection = connection
        self.room = room
        self.subscriptions: dict[Subscription, None] = {}
        self.loop = asyncio.get_running_loop()
        self.next_at = self.loop.time()
        self._nap: asyncio.Future[Any] | None = None
        self.task: asyncio.Task[None] | None = None

    def join(self, subscription: Subscription) -> None:
        self.subscriptions[subscription] = None
        # Read no later than the new listener's interval from now (a new reader: at once).
        self.wake(self.loop.time() + float(subscription.listener.poll_interval))

    def leave(self, subscription: Subscription) -> None:
        self.subscriptions.pop(subscription, None)
        if not self.subscriptions:
            self.wake(self.loop.time())  # the reader ends at once rather than after its nap

    def poke(self) -> None:
        """End the current nap early (the reader then looks at its time and the budget again)."""
        if self._nap is not None and not self._nap.done():
            self._nap.cancel()

    def wake(self, at: float) -> None:
        if at < self.next_at:
            self.next_at = at
            self.poke()

    async def run(self) -> None:
        try:
            while self.subscriptions:
                await self._until_due()
                if not self.subscriptions:
                    break
                await self._slot()
                if not self.subscriptions:
                    break
                await self._read_once()
        except Exception as exc:  # a bug here must not leave the waits waiting for ever
            log.exception("IMKIT room reader for room %r failed", self.room)
            self._fail_all(exc)
        finally:
            self._fail_all(RuntimeError(f"the IMKIT room reader for room {self.room!r} stopped"))
            self.readers._reader_ended(self)

    def _fail_all(self, error: BaseException) -> None:
        for subscription in list(self.subscriptions):
            subscription.events.put_nowait(_Failed(error))
            subscription.finish()
        self.subscriptions.clear()

    async def _until_due(self) -> None:
        """Nap until the next read is due (:meth:`wake` may bring it forward)."""
        while self.subscriptions:
            wait = self.next_at - self.loop.time()
            if wait <= 0:
                return
            self._nap = asyncio.ensure_future(asyncio.sleep(wait))
            await asyncio.wait([self._nap])  # a cancelled nap (woken) is no error here

    async def _slot(self) -> None:
        """Wait for this read's slot in the connection's budget (again when a 429 voided it)."""
        budget = self.connection.budget
        while self.subscriptions:
            generation, at = budget.generation, budget.reserve()
            while self.subscriptions and at - self.loop.time() > 0 and budget.generation == generation:
                self._nap = asyncio.ensure_future(asyncio.sleep(at - self.loop.time()))
                await asyncio.wait([self._nap])
            if budget.generation == generation and budget.paused_until <= self.loop.time():
                return

    async def _read_once(self) -> None:
        subscriptions = list(self.subscriptions)
        began = self.loop.time()
        read, results = await self.loop.run_in_executor(pool(), self._read, subscriptions)
        budget = self.connection.budget
        budget.charge(read.requests)
        if isinstance(read.error, ImkitRateLimitError):
            budget.limited(read.error.retry_after)
            for reader in self.readers.readers.values():  # their naps until a void slot end now
                if reader.connection is self.connection and reader is not self:
                    reader.poke()
        elif read.error is None:
            budget.succeeded()
        if isinstance(read.error, ImkitAuthenticationError):
            self.connection.drop_client()  # the key may have changed: the next read looks it up again
        delays: list[float] = []
        for subscription, (events, delay) in zip(subscriptions, results, strict=True):
            for event in events:
                subscription.events.put_nowait(event)
            if delay is None:
                subscription.finish()
                self.subscriptions.pop(subscription, None)
            elif subscription in self.subscriptions:
                delays.append(delay)
        for subscription in self.subscriptions:
            if subscription not in subscriptions:  # joined during the read: not read for yet
                delays.append(float(subscription.listener.poll_interval))
        self.next_at = began + min(delays, default=0.0)

    def _read(self, subscriptions: list[Subscription]) -> tuple[RoomRead, list[_Taken]]:
        """In a pool thread: read from the oldest cursor on, then let each listener decide."""
        try:
            client: ImkitClient | None = self.connection.get_client()
            failure = None
        except Exception as exc:  # the connection's lookup failed: every listener hears why
            client, failure = None, exc
        since = min(subscription.listener.since_ms for subscription in subscriptions)
        read = read_room(client, self.room, since, failure=failure)
        results: list[_Taken] = []
        for subscription in subscriptions:
            try:
                results.append(subscription.context.run(subscription.listener.take, read))
            except Exception as exc:  # a listener's bug ends that listener only
                results.append(((_Failed(exc),), None))
        return read, results


class RoomReaders:
    """The readers and budgets of one event loop: use :func:`room_readers`."""

    def __init__(self) -> None:
        self.readers: dict[tuple[str, str], RoomReader] = {}
        self.connections: dict[str, _Connection] = {}

    def budget(self, conn_id: str) -> ReadBudget | None:
        """The connection's budget, once a reader used it."""
        connection = self.connections.get(conn_id)
        return None if connection is None else connection.budget

    def watch(
        self,
        conn_id: str,
        room: str,
        listener: Listener,
        *,
        make_client: Callable[[], ImkitClient],
        reads_per_minute: float,
    ) -> Watch:
        """
        Join ``listener`` to the reader of ``room`` on connection ``conn_id`` (started when it
        is the first) for as long as the ``async with`` lasts::

            watch = room_readers().watch(conn_id, room, wait, make_client=..., reads_per_minute=300)
            async with watch as events:
                outcome = await events.next()

        :param make_client: builds the connection's client (called once per connection, in a
            reader thread, by the first read that needs it).
        :param reads_per_minute: the connection's read budget in this process.
        """
        return Watch(self, conn_id, room, listener, make_client, reads_per_minute)

    def _join(
        self,
        conn_id: str,
        room: str,
        subscription: Subscription,
        make_client: Callable[[], ImkitClient],
        reads_per_minute: float,
    ) -> RoomReader:
        connection = self.connections.get(conn_id)
        if connection is None:
            connection = self.connections[conn_id] = _Connection(
                conn_id, ReadBudget(reads_per_minute, clock=asyncio.get_running_loop().time)
            )
        elif connection.budget.per_minute != reads_per_minute:
            connection.budget.set_budget(reads_per_minute)
        if connection.make_client is None:
            connection.make_client = make_client
        reader = self.readers.get((conn_id, room))
        if reader is None:
            reader = self.readers[(conn_id, room)] = RoomReader(self, connection, room)
            connection.readers += 1
            reader.join(subscription)
            # In a context of its own: the reader outlives the wait that started it, and its
            # lines belong to no task's log.
            reader.task = asyncio.get_running_loop().create_task(reader.run(), context=contextvars.Context())
        else:
            reader.join(subscription)
        return reader

    def _reader_ended(self, reader: RoomReader) -> None:
        key = (reader.connection.conn_id, reader.room)
        if self.readers.get(key) is reader:
            del self.readers[key]
        connection = reader.connection
        connection.readers -= 1
        if connection.readers == 0:
            # The last reader of the connection: its client closes (the next reader builds one
            # again); the budget and its rate stay, so a 429's slow-down outlives a quiet moment.
            client, connection.client, connection.make_client = connection.client, None, None
            if client is not None:  # no read is in flight: nothing else holds it
                pool().submit(client.close)


class Watch:
    """A listener's ``async with`` on its room's reader (:meth:`RoomReaders.watch` makes it):
    entering joins the reader and gives the :class:`Subscription`; leaving leaves it."""

    def __init__(
        self,
        readers: RoomReaders,
        conn_id: str,
        room: str,
        listener: Listener,
        make_client: Callable[[], ImkitClient],
        reads_per_minute: float,
    ) -> None:
        self.readers, self.conn_id, self.room = readers, conn_id, room
        self.subscription = Subscription(listener, contextvars.copy_context())
        self.make_client, self.reads_per_minute = make_client, reads_per_minute
        self.reader: RoomReader | None = None

    async def __aenter__(self) -> Subscription:
        self.reader = self.readers._join(
            self.conn_id, self.room, self.subscription, self.make_client, self.reads_per_minute
        )
        return self.subscription

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.reader is not None:
            self.reader.leave(self.subscription)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RoomReaders] = weakref.WeakKeyDictionary()


def room_readers() -> RoomReaders:
    """The readers of the running event loop (one triggerer's loop: every trigger in it)."""
    loop = asyncio.get_running_loop()
    readers = _by_loop.get(loop)
    if readers is None:
        readers = _by_loop[loop] = RoomReaders()
    return readers
