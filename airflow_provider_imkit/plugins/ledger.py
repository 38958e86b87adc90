"""The alert ledger: one row per alert decision, in Airflow's metadata database.

Every process of a deployment (each scheduler, the API server, a restarted scheduler) shares
the metadata database, so the ledger is kept there, in a table of its own,
``imkit_alert_ledger``, created on first use. A run's failure alert, its recovery and its
success notice each have one row, keyed by (dag_id, run_id, kind): the process whose insert
succeeds owns the alert, so Airflow calling a listener twice, or two schedulers handed the
same run, post it once. The row holds the decided text and its state (``pending`` until the
send succeeded, then ``sent``; ``skipped`` when nothing is to be said), so the ledger is also
an outbox: an alert whose process died before it was sent is sent by a scheduler's sweep,
after reading the room back under the settle rule (it may have been stored after all).

Why the metadata database and not the room: an insert under a primary key decides between
concurrent processes exactly and at once, costs no IMKIT request (the key's 1,000 requests a
minute are shared with every send), and survives an IMKIT outage; the room still has the last
word on delivery (the read-back before a retried send).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

TABLE_NAME = "imkit_alert_ledger"
#: The row that says since when the ledger has been kept (the plugin's first use).
SINCE_KEY = ("", "", "ledger_since")

_metadata = sa.MetaData()
TABLE = sa.Table(
    TABLE_NAME,
    _metadata,
    sa.Column("dag_id", sa.String(250), primary_key=True),
    sa.Column("run_id", sa.String(250), primary_key=True),
    # failed | recovered | success, with "#<clear number>" for a run cleared since (kind_key)
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("notice", sa.String(20), nullable=False),  # full | repeat | recovered | success | none
    sa.Column("state", sa.String(20), nullable=False),  # pending | sent | skipped | failed
    sa.Column("room", sa.String(250), nullable=False, default=""),
    sa.Column("text", sa.Text, nullable=False, default=""),
    # Seconds since the epoch, in double precision (MySQL's FLOAT would lose minutes).
    sa.Column("decided_at", sa.Float(precision=53), nullable=False),
    sa.Column("attempt_at", sa.Float(precision=53), nullable=True),  # when the last send began
    sa.Column("lease_until", sa.Float(precision=53), nullable=True),  # the attempt cannot run past this
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("owner", sa.String(250), nullable=False, default=""),  # host:pid-namespace:pid
    sa.Column("message_id", sa.String(100), nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Index("imkit_alert_ledger_state", "state"),
)


@dataclass(frozen=True)
class Entry:
    """One alert decision (a ledger row)."""

    dag_id: str
    run_id: str
    kind: str
    notice: str
    state: str
    room: str = ""
    text: str = ""
    decided_at: float = 0.0
    attempt_at: float | None = None
    lease_until: float | None = None
    attempts: int = 0
    owner: str = ""
    message_id: str | None = None
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dag_id, self.run_id, self.kind)


def kind_key(base: str, clear_number: int) -> str:
    """The ledger kind of an alert for one clear of a run: a cleared run that fails or succeeds
    again is a new event (``failed``, then ``failed#1``, ``failed#2``...)."""
    return base if not clear_number else f"{base}#{clear_number}"


def clear_of(kind: str) -> int:
    """The run's clear number a ledger kind belongs to."""
    _, _, number = kind.partition("#")
    return int(number) if number.isdigit() else 0


def _pid_namespace() -> str:
    """This process's PID namespace (Linux), so that a pid is only ever judged in its own."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def this_owner() -> str:
    """``host:pid-namespace:pid`` of this process (asked each time: a forked child is another
    owner): who is sending an alert."""
    return f"{socket.gethostname()}:{_pid_namespace()}:{os.getpid()}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process ``owner`` names still runs: True/False for a process of this host
    and PID namespace; None when that cannot be told here (another host, or containers that
    share a host name but not their pids): its lease decides then."""
    where, _, pid = owner.rpartition(":")
    host, _, namespace = where.rpartition(":")
    if host != socket.gethostname() or namespace != _pid_namespace() or namespace == "?" or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    """
    The ``imkit_alert_ledger`` table, through Airflow's metadata session.

    :param session: a context manager factory giving a SQLAlchemy session that commits on
        exit (Airflow's ``create_session``; tests give their own database).
    :param clock: seconds since the epoch (tests inject one).
    """

    def __init__(
        self, session: Callable[[], Any] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._session = session
        self._clock = clock
        self._ready = False

    @property
    def owner(self) -> str:
        """Who this process is in the ledger (see :func:`this_owner`)."""
        return self._owner or this_owner()

    @owner.setter
    def owner(self, value: str) -> None:
        self._owner = value

    _owner: str = ""

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Any]:
        factory = self._session
        if factory is None:
            from airflow.utils.session import create_session

            factory = create_session
        with factory() as session:
            if not self._ready:
                self._create(session)
            yield session

    def _create(self, session: Any) -> None:
        """Create the table once per process (two processes at once: the loser's error is harmless)."""
        bind = session.get_bind()
        try:
            TABLE.create(bind=bind, checkfirst=True)
        except sa.exc.SQLAlchemyError:
            if not sa.inspect(bind).has_table(TABLE_NAME):
                raise
        self._ready = True
        since = Entry(*SINCE_KEY, notice="none", state="skipped", decided_at=self._clock(), owner=self.owner)
        with contextlib.suppress(IntegrityError), session.begin_nested():
            session.execute(sa.insert(TABLE).values(**since.__dict__))

    # -- reading ------------------------------------------------------------------------------

    def since(self) -> float:
        """Since when the ledger has been kept (seconds since the epoch)."""
        with self._begin() as session:
            value = session.execute(
                sa.select(TABLE.c.decided_at).where(
                    TABLE.c.dag_id == "", TABLE.c.run_id == "", TABLE.c.kind == SINCE_KEY[2]
                )
            ).scalar()
        return float(value) if value is not None else self._clock()

    def _rows(self, dag_id: str, run_ids: list[str], base: str) -> list[Entry]:
        """Every row of kind ``base`` (any clear of the run) for these runs of ``dag_id``."""
        found: list[Entry] = []
        with self._begin() as session:
            for start in range(0, len(run_ids), 500):
                rows = session.execute(
                    sa.select(TABLE).where(
                        TABLE.c.dag_id == dag_id,
                        sa.or_(TABLE.c.kind == base, TABLE.c.kind.like(f"{base}#%")),
                        TABLE.c.run_id.in_(run_ids[start : start + 500]),
                    )
                ).mappings()
                found.extend(Entry(**row) for row in rows)
        return found

    def entries(self, dag_id: str, run_ids: Iterable[str], base: str) -> dict[str, Entry]:
        """For these runs of ``dag_id``, the row of kind ``base`` of each run's latest clear."""
        latest: dict[str, Entry] = {}
        for entry in self._rows(dag_id, list(run_ids), base):
            if entry.run_id not in latest or clear_of(entry.kind) > clear_of(latest[entry.run_id].kind):
                latest[entry.run_id] = entry
        return latest

    def all_of(self, dag_id: str, run_id: str, base: str) -> list[Entry]:
        """The rows of kind ``base`` of every clear of one run, the first clear first."""
        return sorted(self._rows(dag_id, [run_id], base), key=lambda entry: clear_of(entry.kind))

    def entry(self, dag_id: str, run_id: str, kind: str) -> Entry | None:
        """The row of exactly this key (``kind`` as :func:`kind_key` gives it), or None."""
        with self._begin() as session:
            row = (
                session.execute(
                    sa.select(TABLE).where(
                        TABLE.c.dag_id == dag_id, TABLE.c.run_id == run_id, TABLE.c.kind == kind
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else Entry(**row)

    def pending(self) -> list[Entry]:
        """Alerts decided and not (yet) known to be sent."""
        with self._begin() as session:
            rows = session.execute(sa.select(TABLE).where(TABLE.c.state == "pending")).mappings()
            return [Entry(**row) for row in rows]

    def decided(self, keys: Iterable[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which of these (dag_id, run_id, kind) have a row."""
        keys = list(keys)
        if not keys:
            return set()
        found: set[tuple[str, str, str]] = set()
        pairs = sorted({(dag_id, run_id) for dag_id, run_id, _ in keys})
        with self._begin() as session:
            for start in range(0, len(pairs), 200):  # by primary key: (dag_id, run_id) pairs
                rows = session.execute(
                    sa.select(TABLE.c.dag_id, TABLE.c.run_id, TABLE.c.kind).where(
                        sa.or_(
                            *(
                                sa.and_(TABLE.c.dag_id == dag_id, TABLE.c.run_id == run_id)
                                for dag_id, run_id in pairs[start : start + 200]
                            )
                        )
                    )
                ).all()
                found.update((str(d), str(r), str(k)) for d, r, k in rows)
        return found & set(keys)

    # -- writing ------------------------------------------------------------------------------

    def claim(self, entry: Entry) -> Entry | None:
        """Record a decision: the entry as recorded (this process its owner), or None when
        another process (or an earlier call) had decided it already."""
        entry = replace(entry, decided_at=entry.decided_at or self._clock(), owner=self.owner)
        try:
            with self._begin() as session:
                session.execute(sa.insert(TABLE).values(**entry.__dict__))
        except IntegrityError:
            return None
        return entry

    def attempt(self, entry: Entry, lease: float) -> Entry | None:
        """Take the alert for a send attempt now, for at most ``lease`` seconds (the send's
        deadline and settle window: no other process takes it over before they passed). The
        row must still be as ``entry`` says (pending, same owner and attempt), so two sweeps
        never both send it. The updated entry, or None when another process took it meanwhile."""
        now = self._clock()
        with self._begin() as session:
            done = session.execute(
                sa.update(TABLE)
                .where(
                    *_key(entry),
                    TABLE.c.state == "pending",
                    TABLE.c.owner == entry.owner,
                    TABLE.c.attempts == entry.attempts,
                )
                .values(
                    owner=self.owner,
                    attempt_at=now,
                    lease_until=now + lease,
                    attempts=entry.attempts + 1,
                    error=None,
                )
            )
        if done.rowcount != 1:
            return None
        return replace(
            entry,
            owner=self.owner,
            attempt_at=now,
            lease_until=now + lease,
            attempts=entry.attempts + 1,
            error=None,
        )

    def finish(
        self, entry: Entry, state: str, *, message_id: str | None = None, error: str | None = None
    ) -> None:
        """Record how a send ended: ``sent`` (with the message id), ``pending`` (to be tried
        again, with the error) or ``failed`` (given up). Only while the alert is still this
        attempt's (``entry`` as :meth:`attempt` returned it): a process that was taken over
        never overwrites what the taker recorded. ``attempt_at`` becomes when it ended."""
        with self._begin() as session:
            session.execute(
                sa.update(TABLE)
                .where(
                    *_key(entry),
                    TABLE.c.owner == entry.owner,
                    TABLE.c.attempts == entry.attempts,
                    TABLE.c.state == "pending",
                )
                .values(
                    state=state,
                    message_id=message_id,
                    error=(error or "")[:500] or None,
                    attempt_at=self._clock(),
                )
            )

    def prune(self, older_than: float) -> int:
        """Forget decisions made before ``older_than`` (the since-row stays)."""
        with self._begin() as session:
            done = session.execute(
                sa.delete(TABLE).where(TABLE.c.decided_at < older_than, TABLE.c.kind != SINCE_KEY[2])
            )
        return int(done.rowcount or 0)


def _key(entry: Entry) -> tuple[Any, ...]:
    """The WHERE clauses that pick ``entry``'s row."""
    return (TABLE.c.dag_id == entry.dag_id, TABLE.c.run_id == entry.run_id, TABLE.c.kind == entry.kind)
