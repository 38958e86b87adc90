"""The alert ledger and outbox, over real HTTP to the sandbox and a real SQL database.

Each ``Alerts`` object stands for one process (a scheduler, a restarted scheduler, the API
server); they share one database as a deployment's processes share its metadata database.
The runs a process would read from Airflow's tables are given by a small fake history.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from airflow_provider_imkit.plugins import alerts as alerts_module
from airflow_provider_imkit.plugins import history
from airflow_provider_imkit.plugins import metadata as metadata_module
from airflow_provider_imkit.plugins import sweep as sweep_module
from airflow_provider_imkit.plugins.alerts import Alerts
from airflow_provider_imkit.plugins.ledger import Entry, Ledger
from airflow_provider_imkit.plugins.metadata import FinishedRun
from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
from tests.conftest import API_KEY, FakeTime

ROOM = "ops-alerts"
T0 = datetime(2026, 3, 1, 6, tzinfo=UTC)
SETTINGS = {
    "alerts_room": ROOM,
    "alerts_sender": "airflow",
    "alerts_events": "dag_run_failed,dag_run_recovered",
}


@dataclass
class Runs:
    """The DAG runs Airflow's metadata would hold: (dag_id, run_id) -> (state, end)."""

    runs: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    failed_tasks: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def finish(
        self, dag_id: str, run_id: str, state: str, end: datetime, tasks: list[str] | None = None
    ) -> None:
        self.runs[(dag_id, run_id)] = (state, end)
        if tasks is not None:
            self.failed_tasks[(dag_id, run_id)] = tasks

    def earlier(self, dag_id: str, run_id: str, end: datetime) -> list[history.EarlierRun]:
        rows = [
            history.EarlierRun(state, ended, other)
            for (dag, other), (state, ended) in self.runs.items()
            if dag == dag_id and other != run_id and ended <= end
        ]
        return sorted(rows, key=lambda run: run.end, reverse=True)

    def finished(self, since: datetime) -> list[FinishedRun]:
        rows = [
            FinishedRun(dag, run_id, state, None, ended)
            for (dag, run_id), (state, ended) in self.runs.items()
            if ended >= since
        ]
        return sorted(rows, key=lambda run: run.end)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    fake = Runs()
    monkeypatch.setattr(alerts_module, "_earlier_runs", fake.earlier)
    monkeypatch.setattr(sweep_module, "_finished_runs", fake.finished)
    monkeypatch.setattr(
        alerts_module,
        "_failed_tasks",
        lambda dag_id, run_id: (fake.failed_tasks.get((dag_id, run_id), []), None),
    )
    monkeypatch.setattr(alerts_module, "_run_link", lambda dag_id, run_id: None)
    monkeypatch.setattr(metadata_module, "_dag_tags", lambda dag_id: [])
    return fake


@pytest.fixture
def sandbox(conn_env: Callable[..., None]) -> Iterator[ImkitSandbox]:
    with ImkitSandbox(api_key=API_KEY, rooms=[ROOM], users=["airflow"]) as box:
        conn_env(host=box.url, password=API_KEY)
        yield box
        box.check()


@pytest.fixture
def database(tmp_path: Path) -> Callable[[], Any]:
    """A session factory on one SQLite file: every ``Ledger`` made with it shares the table."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'metadata.db'}")
    make = sessionmaker(bind=engine)

    class Session:
        def __enter__(self) -> Any:
            self.session = make()
            return self.session

        def __exit__(self, exc_type: Any, *rest: Any) -> None:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
            self.session.close()

    return Session


def process(database: Callable[[], Any], clock: Callable[[], float] | None = None, **settings: str) -> Alerts:
    """One Airflow process's listener, configured with [imkit] settings."""
    options = {**SETTINGS, **settings}
    ledger = Ledger(session=database, clock=clock or (lambda: T0.timestamp()))
    return Alerts(get=options.get, ledger=ledger, clock=clock or (lambda: T0.timestamp()))


def run(dag_id: str, run_id: str, end: datetime, clear_number: int = 0) -> Any:
    """A DagRun as listeners get it (``clear_number``: how often it was cleared)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        dag_id=dag_id, run_id=run_id, end_date=end, logical_date=None, clear_number=clear_number
    )


def texts(sandbox: ImkitSandbox) -> list[str]:
    return [m["message"].splitlines()[0] for m in sandbox.received(ROOM)]


def settle(*processes: Alerts) -> None:
    for each in processes:
        assert each.sender.flush(30)


def test_a_listener_called_twice_alerts_once(sandbox: ImkitSandbox, database: Any, runs: Runs) -> None:
    scheduler = process(database)
    runs.finish("etl", "r1", "failed", T0, ["load"])
    scheduler.on_dag_run_failed(run("etl", "r1", T0), "task_failure")
    scheduler.on_dag_run_failed(run("etl", "r1", T0), "task_failure")
    settle(scheduler)
    assert texts(sandbox) == ["❌ Airflow DAG etl run failed: 1 task failed"]


def test_two_schedulers_handed_the_same_runs_alert_each_once(
    sandbox: ImkitSandbox, database: Any, runs: Runs
) -> None:
    first, second = process(database), process(database)
    runs.finish("etl", "r1", "failed", T0, ["load"])
    runs.finish("etl", "r2", "success", T0 + timedelta(minutes=5))
    barrier = threading.Barrier(2)

    def scheduler(alerts: Alerts) -> None:
        barrier.wait()
        alerts.on_dag_run_failed(run("etl", "r1", T0), "task_failure")
        alerts.on_dag_run_success(run("etl", "r2", T0 + timedelta(minutes=5)), "success")

    threads = [threading.Thread(target=scheduler, args=(each,)) for each in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settle(first, second)
    # ...and a restarted scheduler handed them again later.
    third = process(database)
    third.on_dag_run_failed(run("etl", "r1", T0), "task_failure")
    third.on_dag_run_success(run("etl", "r2", T0 + timedelta(minutes=5)), "success")
    settle(third)
    # (Both events reach both schedulers at once here, so either alert may be stored first.)
    assert sorted(texts(sandbox)) == [
        "✅ Airflow DAG etl recovered after 1 failed run, down for 5 min 00 s",
        "❌ Airflow DAG etl run failed: 1 task failed",
    ]


def test_a_process_that_died_before_deciding_is_swept(
    sandbox: ImkitSandbox, database: Any, runs: Runs
) -> None:
    """The scheduler died with the alert only in its queue: the restarted one's sweep sends it."""
    process(database, clock=lambda: T0.timestamp() - 60).ledger.since()  # the plugin was on before
    runs.finish("etl", "r1", "failed", T0, ["load"])
    restarted = process(database, clock=lambda: T0.timestamp() + 60)
    restarted.sweep(restarted.config)  # type: ignore[arg-type]
    restarted.sweep(restarted.config)  # type: ignore[arg-type]  # a second sweep: nothing new
    assert texts(sandbox) == ["❌ Airflow DAG etl run failed: 1 task failed"]


def test_a_process_that_died_while_sending_is_read_back_then_sent(
    sandbox: ImkitSandbox, database: Any, runs: Runs, fake_client_time: FakeTime
) -> None:
    """Decided and claimed by a process that is gone (its send never reached IMKIT): the sweep
    reads the room back through the settle window, finds nothing, and sends it once."""
    runs.finish("etl", "r1", "failed", T0, ["load"])
    gone = Ledger(session=database, clock=lambda: T0.timestamp())
    gone.owner = "another-host:1"
    claimed = gone.claim(
        Entry("etl", "r1", "failed", "full", "pending", ROOM, "❌ Airflow DAG etl run failed")
    )
    assert claimed is not None and gone.attempt(claimed, lease=190) is not None
    later = T0.timestamp() + 3600
    restarted = process(database, clock=lambda: later)
    restarted.sweep(restarted.config)  # type: ignore[arg-type]
    assert texts(sandbox) == ["❌ Airflow DAG etl run failed"]
    assert sandbox.request_counts()["GET /rooms/ops-alerts/messages/v3"] >= 1


def test_an_alert_posted_by_a_process_that_died_is_not_posted_again(
    sandbox: ImkitSandbox, database: Any, runs: Runs, fake_client_time: FakeTime
) -> None:
    """It died after IMKIT stored the alert but before the ledger said so: found, not resent."""
    runs.finish("etl", "r1", "failed", T0, ["load"])
    gone = Ledger(session=database, clock=lambda: T0.timestamp())
    gone.owner = "another-host:1"
    claimed = gone.claim(
        Entry("etl", "r1", "failed", "full", "pending", ROOM, "❌ Airflow DAG etl run failed")
    )
    assert claimed is not None and gone.attempt(claimed, lease=190) is not None
    sandbox.post_as("airflow", ROOM, "❌ Airflow DAG etl run failed")
    restarted = process(database, clock=lambda: T0.timestamp() + 3600)
    restarted.sweep(restarted.config)  # type: ignore[arg-type]
    assert texts(sandbox) == ["❌ Airflow DAG etl run failed"]
    assert restarted.ledger.pending() == []
    entry = restarted.ledger.entry("etl", "r1", "failed")
    assert entry is not None and entry.state == "sent"


def test_an_alert_that_could_not_be_sent_is_sent_by_a_later_sweep(
    sandbox: ImkitSandbox, database: Any, runs: Runs, fake_client_time: FakeTime
) -> None:
    runs.finish("etl", "r1", "failed", T0, ["load"])
    now = [T0.timestamp()]
    scheduler = process(database, clock=lambda: now[0])
    sandbox.inject("/messages", Fault.respond(503, {"RC": 503, "RM": "down"}), times=3)
    scheduler.on_dag_run_failed(run("etl", "r1", T0), "task_failure")
    settle(scheduler)
    assert texts(sandbox) == []
    assert scheduler.ledger.entry("etl", "r1", "failed").state == "pending"  # type: ignore[union-attr]
    now[0] += 120  # the next sweep, IMKIT back
    scheduler.sweep(scheduler.config)  # type: ignore[arg-type]
    assert texts(sandbox) == ["❌ Airflow DAG etl run failed: 1 task failed"]


def test_failures_from_before_the_plugin_was_on_do_not_silence_the_next(
    sandbox: ImkitSandbox, database: Any, runs: Runs
) -> None:
    runs.finish("etl", "r1", "failed", T0 - timedelta(minutes=20))  # the plugin was off then
    runs.finish("etl", "r2", "failed", T0 - timedelta(minutes=10))
    runs.finish("etl", "r3", "failed", T0, ["load"])
    scheduler = process(database)
    scheduler.on_dag_run_failed(run("etl", "r3", T0), "task_failure")
    settle(scheduler)
    assert texts(sandbox) == ["❌ Airflow DAG etl run failed: 1 task failed"]


def test_a_cleared_run_that_succeeds_after_its_failure_alert_is_a_recovery(
    sandbox: ImkitSandbox, database: Any, runs: Runs
) -> None:
    scheduler = process(database)
    runs.finish("etl", "r1", "failed", T0, ["load"])
    scheduler.on_dag_run_failed(run("etl", "r1", T0), "task_failure")
    settle(scheduler)
    later = T0 + timedelta(minutes=30)
    runs.finish("etl", "r1", "success", later)  # cleared, then it succeeded
    scheduler.on_dag_run_success(run("etl", "r1", later, clear_number=1), "success")
    scheduler.on_dag_run_success(run("etl", "r1", later, clear_number=1), "success")  # Airflow, again
    settle(scheduler)
    assert texts(sandbox) == [
        "❌ Airflow DAG etl run failed: 1 task failed",
        "✅ Airflow DAG etl recovered after 1 failed run, down for 30 min 00 s",
    ]


def test_each_clear_of_a_run_is_its_own_event(sandbox: ImkitSandbox, database: Any, runs: Runs) -> None:
    """fail, cleared: recovers, cleared: fails again (announced again), cleared: recovers again;
    and a run that first succeeded, then failed after a clear, then recovered."""
    now = [T0.timestamp()]
    scheduler = process(database, clock=lambda: now[0])  # decisions are made as the runs end

    def each_clear(dag_id: str, run_id: str, *ends: tuple[str, int]) -> None:
        """The run ends ``state`` at T0 + ``minute``, then is cleared, and so on."""
        for clear, (state, minute) in enumerate(ends):
            end = T0 + timedelta(minutes=minute)
            now[0] = end.timestamp()
            runs.finish(dag_id, run_id, state, end, ["load"] if state == "failed" else None)
            if state == "failed":
                scheduler.on_dag_run_failed(run(dag_id, run_id, end, clear), "task_failure")
            else:
                scheduler.on_dag_run_success(run(dag_id, run_id, end, clear), "success")
            settle(scheduler)

    each_clear("etl", "r1", ("failed", 0), ("success", 10), ("failed", 20), ("success", 30))
    each_clear("bi", "b1", ("success", 40), ("failed", 50), ("success", 60))
    assert texts(sandbox) == [
        "❌ Airflow DAG etl run failed: 1 task failed",
        "✅ Airflow DAG etl recovered after 1 failed run, down for 10 min 00 s",
        "❌ Airflow DAG etl run failed: 1 task failed",
        "✅ Airflow DAG etl recovered after 1 failed run, down for 10 min 00 s",
        "❌ Airflow DAG bi run failed: 1 task failed",
        "✅ Airflow DAG bi recovered after 1 failed run, down for 10 min 00 s",
    ]


def test_a_success_after_unannounced_failures_is_quiet(
    sandbox: ImkitSandbox, database: Any, runs: Runs
) -> None:
    runs.finish("etl", "r1", "failed", T0 - timedelta(minutes=10))  # before the plugin was on
    runs.finish("etl", "r2", "success", T0)
    scheduler = process(database)
    scheduler.on_dag_run_success(run("etl", "r2", T0), "success")
    settle(scheduler)
    assert texts(sandbox) == []


def test_a_timed_out_run_says_so(sandbox: ImkitSandbox, database: Any, runs: Runs) -> None:
    scheduler = process(database)
    runs.finish("etl", "r1", "failed", T0, [])
    scheduler.on_dag_run_failed(run("etl", "r1", T0), "timed_out")
    settle(scheduler)
    assert texts(sandbox) == ["❌ Airflow DAG etl run timed out (dagrun_timeout)"]


def test_the_sweep_leaves_runs_from_before_its_window(
    sandbox: ImkitSandbox, database: Any, runs: Runs
) -> None:
    scheduler = process(database, alerts_sweep_lookback="600")
    scheduler.ledger.since()  # the ledger is started now (T0)
    runs.finish("etl", "old", "failed", T0 - timedelta(hours=2), ["load"])
    runs.finish("etl", "new", "failed", T0 + timedelta(minutes=1), ["load"])
    later = T0.timestamp() + 300
    scheduler._clock = lambda: later
    scheduler.sweep(scheduler.config)  # type: ignore[arg-type]
    (only,) = sandbox.received(ROOM)  # the new run's alert; the old run is outside the window
    assert only["message"].startswith("❌ Airflow DAG etl run failed")


def test_the_sweep_leaves_a_run_that_just_ended_to_its_own_listener(
    sandbox: ImkitSandbox, database: Any, runs: Runs
) -> None:
    process(database, clock=lambda: T0.timestamp() - 60).ledger.since()  # the plugin was on before
    runs.finish("etl", "r1", "failed", T0, ["load"])
    scheduler = process(database, clock=lambda: T0.timestamp() + 2)
    scheduler.sweep(scheduler.config)  # type: ignore[arg-type]
    assert texts(sandbox) == []  # 2 s after it ended: the process handling it alerts it
    later = process(database, clock=lambda: T0.timestamp() + 30)
    later.sweep(later.config)  # type: ignore[arg-type]
    assert texts(sandbox) == ["❌ Airflow DAG etl run failed: 1 task failed"]


def test_a_slow_owner_never_overwrites_what_its_taker_recorded(database: Any) -> None:
    first = Ledger(session=database, clock=lambda: T0.timestamp())
    first.owner = "host-a:1:10"
    claimed = first.claim(Entry("etl", "r1", "failed", "full", "pending", ROOM, "text"))
    assert claimed is not None
    slow = first.attempt(claimed, lease=10)
    assert slow is not None
    taker = Ledger(session=database, clock=lambda: T0.timestamp() + 60)
    taker.owner = "host-b:1:20"
    taken = taker.attempt(slow, lease=10)
    assert taken is not None
    taker.finish(taken, "sent", message_id="m1")
    first.finish(slow, "pending", error="read timeout")  # the slow owner, late: ignored
    entry = taker.entry("etl", "r1", "failed")
    assert entry is not None and (entry.state, entry.message_id, entry.owner) == ("sent", "m1", "host-b:1:20")
    assert first.attempt(slow, lease=10) is None  # and it cannot take it back
