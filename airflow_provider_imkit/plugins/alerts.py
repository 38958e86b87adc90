"""The ``imkit_alerts`` plugin: deployment-wide IMKIT alerts with no DAG change.

Set ``[imkit] alerts_room`` (``AIRFLOW__IMKIT__ALERTS_ROOM``) and every component alerts:
the scheduler posts ONE message per failed DAG run (and "still failing", "recovered"), the
DAG processor one per broken DAG file (and "fixed"), workers per failed or retried task when
asked to. Listener hooks only enqueue; a background sender does the work (history queries,
the send through the hook's one request path). Nothing in here may break or slow Airflow:
every exception is caught and logged once.

Run alerts go through the alert ledger (plugins/ledger.py, in the metadata database): each is
decided once, whichever process is handed the run and however often; and each scheduler
sweeps the runs that finished in the last ``alerts_sweep_lookback`` seconds for alerts never
decided or never sent (a process that died in between), every ``alerts_sweep_interval``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.listeners import hookimpl  # pluggy's marker for listener hooks (2.x and 3.x)
from airflow.plugins_manager import AirflowPlugin

from airflow_provider_imkit import log_masking
from airflow_provider_imkit.notifications.default_message import SEE_THE_TASK_LOG, first_line
from airflow_provider_imkit.plugins import history
from airflow_provider_imkit.plugins.config import AlertsConfig, AlertsConfigError, alerts_config
from airflow_provider_imkit.plugins.ledger import Entry, Ledger, clear_of, kind_key, owner_alive
from airflow_provider_imkit.plugins.sender import BackgroundSender
from airflow_provider_imkit.read_back import READ_BACK_CLOCK_SKEW_MS
from airflow_provider_imkit.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

#: How often the DAG processor looks whether a file it reported broken imports again.
FIXED_CHECK_SECONDS = 15.0
#: The error line a failed task leaves for the scheduler's run alert (an XCom of the task).
ERROR_XCOM_KEY = "imkit_alerts_error"
#: A sweep leaves a run that ended less than this long ago (s) to its own process's listener.
SWEEP_GRACE = 10.0
#: Sends of one alert before it is given up (marked ``failed`` in the ledger).
MAX_SEND_ATTEMPTS = 5
#: A pending alert of this very process is tried again this long after its last attempt (s).
RETRY_PENDING_AFTER = 60.0
#: A send attempt's lease: its deadline and settle window plus this margin (s). Another
#: process takes a pending alert over only after the lease (or, for a process of this host
#: and PID namespace, as soon as that process is gone).
TAKE_OVER_MARGIN = 60.0
#: A decision never attempted (its process died right after deciding) is taken over after (s).
TAKE_OVER_AFTER = 120.0 + 10.0 + TAKE_OVER_MARGIN
#: Decisions older than this are forgotten by the sweep (s): longer than any failure streak
#: whose "still failing" notices matter.
LEDGER_KEEP_SECONDS = 30 * 86400.0


class Alerts:
    """The listener object: one per process, configured once from ``[imkit]``."""

    def __init__(
        self,
        get: Callable[[str], str | None] | None = None,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._get = get
        self._config: AlertsConfig | None = None
        self._loaded = False
        self._broken_files: dict[str, str] = {}
        self.sender = BackgroundSender()
        self.ledger = ledger or Ledger()
        self._clock = clock
        self._sweeping = False
        self._sweep_queued = threading.Event()

    # -- configuration, never raising --------------------------------------------------------

    @property
    def config(self) -> AlertsConfig | None:
        if not self._loaded:
            self._loaded = True
            try:
                self._config = alerts_config(self._get or _airflow_conf)
            except AlertsConfigError as exc:
                log.error("%s", exc)
            except Exception:
                log.exception("IMKIT alerts: cannot read the [imkit] section; alerts are OFF")
            if self._config is not None:
                self.sender = BackgroundSender(self._config.queue_size)
                # A task process or `dags test` may end without before_stopping: flush then too.
                atexit.register(self.sender.flush, self._config.flush_timeout)
        return self._config

    def _guarded(self, event: str, make_job: Callable[[AlertsConfig], Callable[[], None] | None]) -> None:
        """Run a hook body: enqueue a job, and never let anything escape into Airflow."""
        try:
            config = self.config
            if config is None or event not in config.events:
                return
            job = make_job(config)
            if job is not None:
                self.sender.submit(job)
        except Exception:
            log.exception("IMKIT alerts: the %s hook failed (Airflow carries on)", event)

    # -- listener hooks (enqueue only) ---------------------------------------------------------

    @hookimpl
    def on_starting(self, component: Any) -> None:
        """A scheduler starts: sweep for alerts a stopped process decided and never sent (or never
        decided), then every ``alerts_sweep_interval`` seconds."""
        try:
            if _is_scheduler(sys.argv) and self.config is not None:
                self.start_sweeping(self.config)
        except Exception:
            log.exception("IMKIT alerts: the sweep could not start (Airflow carries on)")

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        self._guarded(
            "dag_run_failed",
            lambda config: partial(self._failed_run, config, reason=msg, **_run_facts(dag_run)),
        )

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        def job(event: str) -> Callable[[AlertsConfig], Callable[[], None]]:
            return lambda config: partial(self._succeeded_run, config, event, **_run_facts(dag_run))

        self._guarded("dag_run_recovered", job("dag_run_recovered"))
        self._guarded("dag_run_success", job("dag_run_success"))

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        """In the task's process, before it reads any connection: keep the secrets the SDK sends
        to its supervisor out of ``airflow dags test``'s debug lines (log_masking), whichever
        hook or code reads the connection. Not an alert: on whatever the settings say."""
        with contextlib.suppress(Exception):
            from airflow_provider_imkit.version_compat import SDK_MASKS_CONNECTION_SECRETS

            if SDK_MASKS_CONNECTION_SECRETS:
                log_masking.install()

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        def job(config: AlertsConfig, event: str) -> Callable[[], None]:
            return partial(self._task_event, config, event, first_line(error), **_task_facts(task_instance))

        state = getattr(task_instance, "state", None)
        retry = str(getattr(state, "value", state)) == "up_for_retry"
        event = "task_retry" if retry else "task_failed"
        if not retry:  # the scheduler's run alert quotes the first failed task's error line
            self._guarded(
                "dag_run_failed", lambda config: self._leave_error_line(task_instance, first_line(error))
            )
        self._guarded(event, lambda config: job(config, event))

    @hookimpl
    def on_new_dag_import_error(self, filename: str, stacktrace: str) -> None:
        def job(config: AlertsConfig) -> Callable[[], None]:
            last = (stacktrace or "").strip().splitlines()[-1:] or ["(no error text)"]
            return partial(self._import_error, config, str(filename), last[0])

        self._guarded("import_error", job)

    @hookimpl
    def on_existing_dag_import_error(self, filename: str, stacktrace: str) -> None:
        """The same file still broken: no new message (the first one stands)."""
        self._guarded("import_error", lambda config: lambda: self._check_fixed(config))

    @hookimpl
    def before_stopping(self, component: Any) -> None:
        try:
            if self.config is not None:
                self.sender.flush(self.config.flush_timeout)
        except Exception:
            log.exception("IMKIT alerts: flushing failed")

    # -- the work, in the sender thread ----------------------------------------------------------

    def _send(self, config: AlertsConfig, room: str, text: str) -> None:
        from airflow_provider_imkit.hooks.imkit import ImkitHook

        with ImkitHook(config.conn_id) as hook:
            hook.send_message(
                room=room, sender=config.sender, message=text, mentions=list(config.mentions) or None
            )

    def _failed_run(
        self,
        config: AlertsConfig,
        dag_id: str,
        run_id: str,
        logical_date: Any,
        end: datetime,
        tags: list[str] | None,
        reason: str | None = None,
        clear_number: int = 0,
    ) -> None:
        """Decide a failed run's alert once (the ledger; once per clear of the run), then send it."""
        kind = kind_key("failed", clear_number)
        if self.ledger.entry(dag_id, run_id, kind) is not None:
            return  # decided already (Airflow called twice, another scheduler, a sweep)
        room = _room(config, "dag_run_failed", dag_id, tags)
        if room is None:  # not wanted: recorded, so that no sweep looks at it again
            self._decide(config, Entry(dag_id, run_id, kind, "none", "skipped"))
            return
        streak = history.failure_streak(_earlier_runs(dag_id, run_id, end))
        alerted = self.ledger.entries(dag_id, [run.run_id for run in streak], "failed")
        notices = [run.end for run in streak if _announced(alerted.get(run.run_id))]
        notice = history.failure_notice(notices, end, config.repeat_interval)
        link = _run_link(dag_id, run_id)
        text = ""
        if notice == "full":
            failed, error = _failed_tasks(dag_id, run_id)
            text = history.failed_run_text(
                dag_id=dag_id,
                run_id=run_id,
                logical_date=logical_date,
                failed_tasks=failed,
                error=error,
                link=link,
                reason=reason,
            )
        elif notice == "repeat":
            text = history.still_failing_text(dag_id, len(streak) + 1, streak[0].end, link)
        self._decide(config, Entry(dag_id, run_id, kind, notice or "none", "pending", room, text))

    def _succeeded_run(
        self,
        config: AlertsConfig,
        event: str,
        dag_id: str,
        run_id: str,
        logical_date: Any,
        end: datetime,
        tags: list[str] | None,
        clear_number: int = 0,
    ) -> None:
        """Decide a successful run's notice once (per clear of the run): "recovered" after
        failures that were announced (earlier runs, or this very run before it was cleared,
        since its last recovery), or the success."""
        base = "success" if event == "dag_run_success" else "recovered"
        kind = kind_key(base, clear_number)
        if self.ledger.entry(dag_id, run_id, kind) is not None:
            return
        room = _room(config, event, dag_id, tags)
        if room is None:
            self._decide(config, Entry(dag_id, run_id, kind, "none", "skipped"))
            return
        if base == "success":
            text = f"✅ Airflow DAG {dag_id} run succeeded\nRun: {run_id}"
            self._decide(config, Entry(dag_id, run_id, kind, "success", "pending", room, text))
            return
        streak = history.failure_streak(_earlier_runs(dag_id, run_id, end))
        alerted = self.ledger.entries(dag_id, [run.run_id for run in streak], "failed")
        own = self._own_failure(dag_id, run_id, clear_number)  # this run failed, then was cleared
        failures = [run.end for run in streak] + ([_utc(own.decided_at)] if own is not None else [])
        if not (any(_announced(e) for e in alerted.values()) or _announced(own)):
            self._decide(config, Entry(dag_id, run_id, kind, "none", "pending", room, ""))
            return
        down = (end - min(failures)).total_seconds()
        text = history.recovered_text(dag_id, len(failures), down, _run_link(dag_id, run_id))
        self._decide(config, Entry(dag_id, run_id, kind, "recovered", "pending", room, text))

    def _own_failure(self, dag_id: str, run_id: str, clear_number: int) -> Entry | None:
        """This run's announced failure (of an earlier clear) not yet followed by a recovery."""
        recovered = [
            clear_of(e.kind)
            for e in self.ledger.all_of(dag_id, run_id, "recovered")
            if e.notice == "recovered"
        ]
        after = max(recovered, default=-1)
        failures = [
            e
            for e in self.ledger.all_of(dag_id, run_id, "failed")
            if _announced(e) and after < clear_of(e.kind) <= clear_number
        ]
        return failures[-1] if failures else None

    def _decide(self, config: AlertsConfig, entry: Entry) -> None:
        """Record the decision in the ledger; the process whose record it is sends it."""
        if not entry.text:
            entry = Entry(entry.dag_id, entry.run_id, entry.kind, entry.notice, "skipped", entry.room)
        claimed = self.ledger.claim(entry)
        if claimed is not None and claimed.state == "pending":
            self._deliver(config, claimed)

    def _deliver(self, config: AlertsConfig, entry: Entry, *, read_back: bool = False) -> None:
        """Send a pending alert, taken for this attempt in the ledger (no other process sends
        it meanwhile). ``read_back``: an earlier attempt (maybe of a process that died) may have
        posted it: read the room first, under the settle rule from that attempt's end."""
        from airflow_provider_imkit.exceptions import ImkitError
        from airflow_provider_imkit.hooks.imkit import ImkitHook

        hook = ImkitHook(config.conn_id)
        try:
            settings = hook.settings
        except ImkitError as exc:
            log.error("IMKIT alerts: the %s alert of %s was not sent (%s)", entry.kind, entry.run_id, exc)
            return
        # The earlier attempt (maybe of a process that died) ended when it recorded its error,
        # else by its deadline or when its process died (before now).
        earlier = entry.attempt_at or entry.decided_at
        ended_by = earlier if entry.error else min(self._clock(), earlier + settings.deadline)
        taken = self.ledger.attempt(entry, lease=settings.deadline + settings.retry.settle + TAKE_OVER_MARGIN)
        if taken is None:
            hook.close()
            return  # another process took it meanwhile
        mentions = list(config.mentions) or None
        try:
            with hook:
                found = None
                if read_back:
                    found = hook.find_message(
                        room=entry.room,
                        sender=config.sender,
                        message=entry.text,
                        mentions=mentions,
                        since_ms=int(entry.decided_at * 1000) - READ_BACK_CLOCK_SKEW_MS,
                        settled_after=ended_by + settings.retry.settle,
                    )
                    if found is not None:
                        log.info("IMKIT alerts: %s alert of %s was posted already", entry.kind, entry.run_id)
                message = found or hook.send_message(
                    room=entry.room, sender=config.sender, message=entry.text, mentions=mentions
                )
        except ImkitError as exc:
            given_up = taken.attempts >= MAX_SEND_ATTEMPTS or not getattr(exc, "transient", True)
            self.ledger.finish(taken, "failed" if given_up else "pending", error=str(exc))
            log.error(
                "IMKIT alerts: the %s alert of %s %s was not sent (%s)%s",
                entry.kind,
                entry.dag_id,
                entry.run_id,
                exc,
                "; giving up" if given_up else "; a scheduler's sweep tries again",
            )
            return
        self.ledger.finish(taken, "sent", message_id=str(message.get("_id") or "") or None)

    # -- the sweep: the ledger as an outbox ---------------------------------------------------------

    def start_sweeping(self, config: AlertsConfig) -> None:
        """Sweep (in the sender thread) as soon as the scheduler can read connections, then
        every ``config.sweep_interval`` seconds."""
        if self._sweeping:
            return
        self._sweeping = True

        def tick() -> None:
            ready = _reads_connections()
            # One sweep at a time: none is queued behind a long one (an IMKIT outage).
            if ready and not self._sweep_queued.is_set():
                self._sweep_queued.set()
                if not self.sender.submit(lambda: self._queued_sweep(config)):
                    self._sweep_queued.clear()
            timer = threading.Timer(config.sweep_interval if ready else 1.0, tick)
            timer.daemon = True
            timer.start()

        tick()

    def _queued_sweep(self, config: AlertsConfig) -> None:
        try:
            self.sweep(config)
        finally:
            self._sweep_queued.clear()

    def sweep(self, config: AlertsConfig) -> None:
        """
        Decide and send what no process did: runs finished in the last
        ``config.sweep_lookback`` seconds (and since the ledger was started) with no decision,
        and decisions still pending whose process died or gave up for now. Safe to run in any
        number of processes at once: the ledger lets one of them have each alert.
        """
        now = self._clock()
        since = max(self.ledger.since(), now - config.sweep_lookback)
        # Runs that ended a moment ago are left to the listener of the process handling them.
        runs = [run for run in _finished_runs(_utc(since)) if run.end.timestamp() <= now - SWEEP_GRACE]
        wanted = [
            (run, kind)
            for run in runs
            for kind in (("failed",) if run.state == "failed" else ("recovered", "success"))
        ]
        decided = self.ledger.decided(
            (run.dag_id, run.run_id, kind_key(kind, run.clear_number)) for run, kind in wanted
        )
        for run, kind in wanted:
            if (run.dag_id, run.run_id, kind_key(kind, run.clear_number)) in decided:
                continue
            facts = {"dag_id": run.dag_id, "run_id": run.run_id, "logical_date": run.logical_date}
            facts.update(end=run.end, tags=None, clear_number=run.clear_number)
            if kind == "failed":
                self._failed_run(config, **facts)
            else:
                event = "dag_run_success" if kind == "success" else "dag_run_recovered"
                if event in config.events:
                    self._succeeded_run(config, event, **facts)
        for entry in self.ledger.pending():
            if self._may_take(entry, now):
                self._deliver(config, entry, read_back=True)
        self.ledger.prune(now - LEDGER_KEEP_SECONDS)

    def _may_take(self, entry: Entry, now: float) -> bool:
        """Whether a sweep here may send a pending alert: its own after a pause, a dead
        process's on this host at once, any other's once it cannot be sending it any more."""
        last = entry.attempt_at or entry.decided_at
        if entry.owner == self.ledger.owner:
            return entry.attempt_at is None or now - last >= RETRY_PENDING_AFTER
        if owner_alive(entry.owner) is False:
            return True
        if entry.lease_until is not None:
            return now >= entry.lease_until
        return now - last >= TAKE_OVER_AFTER

    def _task_event(
        self,
        config: AlertsConfig,
        event: str,
        error: str | None,
        dag_id: str,
        task: str,
        run_id: str,
        tags: list[str],
    ) -> None:
        room = _room(config, event, dag_id, tags)
        if room is None:
            return
        what = "failed and will be retried" if event == "task_retry" else "failed"
        text = f"{'🔁' if event == 'task_retry' else '❌'} Airflow task {dag_id}.{task} {what}\nRun: {run_id}"
        self._send(config, room, f"{text}\nError: {error or SEE_THE_TASK_LOG}")

    def _import_error(self, config: AlertsConfig, filename: str, last_line: str) -> None:
        self._broken_files[filename] = last_line
        name = os.path.basename(filename)
        self._send(
            config, config.room, f"⚠️ DAG file {name} cannot be imported\nFile: {filename}\nError: {last_line}"
        )
        self._watch_fixed(config)

    def _watch_fixed(self, config: AlertsConfig) -> None:
        """While files are broken, look every ``FIXED_CHECK_SECONDS`` whether Airflow still says so."""

        def tick() -> None:
            self.sender.submit(lambda: self._check_fixed(config))
            if self._broken_files:
                self._watch_fixed(config)

        timer = threading.Timer(FIXED_CHECK_SECONDS, tick)
        timer.daemon = True
        timer.start()

    def _check_fixed(self, config: AlertsConfig) -> None:
        """Files this DAG processor reported broken that Airflow no longer lists as broken."""
        if not self._broken_files:
            return
        still_broken = _import_error_files()
        for filename in list(self._broken_files):
            if filename not in still_broken and not any(filename.endswith(f"/{f}") for f in still_broken):
                del self._broken_files[filename]
                self._send(
                    config,
                    config.room,
                    f"✅ DAG file {os.path.basename(filename)} imports again\nFile: {filename}",
                )

    def _leave_error_line(self, task_instance: Any, line: str | None) -> None:
        """In the worker: keep the error line (an XCom) where the scheduler's run alert reads it.
        One local call to the task's supervisor, the only work a hook does beyond enqueueing."""
        if line:
            with contextlib.suppress(Exception):
                task_instance.xcom_push(key=ERROR_XCOM_KEY, value=line[:300])


# -- reading Airflow's metadata (in the sender thread) -------------------------------------------


def _announced(entry: Entry | None) -> bool:
    """Whether a ledger entry is a failure notice that was (or is being) posted."""
    return entry is not None and entry.notice in ("full", "repeat") and entry.state in ("pending", "sent")


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _reads_connections() -> bool:
    """Whether this scheduler can read connections from the metadata database yet: Airflow 3
    marks the process as a server only when the scheduler loop starts (``on_starting`` comes
    earlier, when only environment variables would be found)."""
    return not AIRFLOW_V_3_0_PLUS or os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "server"


def _is_scheduler(argv: list[str]) -> bool:
    """Whether this process is ``airflow scheduler`` (where the sweep runs)."""
    if not argv or "scheduler" not in argv[1:2]:
        return False
    program = os.path.normpath(argv[0])  # `airflow scheduler`, or `python -m airflow scheduler`
    return os.path.basename(program) == "airflow" or program.endswith(os.path.join("airflow", "__main__.py"))


def _airflow_conf(key: str) -> str | None:
    from airflow.configuration import conf

    return conf.get("imkit", key, fallback=None)


def _run_facts(dag_run: Any) -> dict[str, Any]:
    end = getattr(dag_run, "end_date", None) or datetime.now(UTC)
    dag = dag_run.__dict__.get("dag")  # set by the scheduler; never lazy-loaded from here
    tags = getattr(dag, "tags", None)
    return {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "logical_date": getattr(dag_run, "logical_date", None),
        "end": end,
        "tags": sorted(tags) if tags is not None else None,
        "clear_number": int(getattr(dag_run, "clear_number", 0) or 0),
    }


def _task_facts(ti: Any) -> dict[str, Any]:
    map_index = getattr(ti, "map_index", -1)
    task_id = ti.task_id if not isinstance(map_index, int) or map_index < 0 else f"{ti.task_id}[{map_index}]"
    dag = getattr(getattr(ti, "task", None), "dag", None)
    return {
        "dag_id": ti.dag_id,
        "task": task_id,
        "run_id": ti.run_id,
        "tags": sorted(getattr(dag, "tags", None) or []),
    }


def _room(config: AlertsConfig, event: str, dag_id: str, tags: list[str] | None) -> str | None:
    """The room an event of this DAG goes to, or None when the settings leave it out."""
    tags = _dag_tags(dag_id) if tags is None else tags
    return config.room_for(dag_id, tags) if config.wants(event, dag_id, tags) else None


def _run_link(dag_id: str, run_id: str) -> str | None:
    from airflow.configuration import conf

    base = (
        conf.get("api", "base_url", fallback=None) or conf.get("webserver", "base_url", fallback="") or ""
    ).rstrip("/")
    return f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}" if base else None


def _earlier_runs(dag_id: str, run_id: str, end: datetime) -> list[history.EarlierRun]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagRun.state, DagRun.end_date, DagRun.run_id)
            .where(DagRun.dag_id == dag_id, DagRun.run_id != run_id, DagRun.end_date.is_not(None))
            .where(DagRun.end_date <= end, DagRun.state.in_(("success", "failed")))
            .order_by(DagRun.end_date.desc())
            .limit(500)
        ).all()
    return [
        history.EarlierRun(str(getattr(state, "value", state)), ended, str(other))
        for state, ended, other in rows
    ]


@dataclass(frozen=True)
class FinishedRun:
    dag_id: str
    run_id: str
    state: str
    logical_date: Any
    end: datetime
    clear_number: int = 0


def _finished_runs(since: datetime) -> list[FinishedRun]:
    """Runs that ended failed or successful since ``since`` (the sweep's window), newest first."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    # Airflow 3 calls the column logical_date; Airflow 2, execution_date.
    logical = DagRun.logical_date if AIRFLOW_V_3_0_PLUS else DagRun.execution_date
    with create_session() as session:
        rows = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.state, logical, DagRun.end_date, DagRun.clear_number)
            .where(DagRun.end_date.is_not(None), DagRun.end_date >= since)
            .where(DagRun.state.in_(("success", "failed")))
            .order_by(DagRun.end_date.desc())  # the newest first, should the window hold more
            .limit(10_000)
        ).all()
    return [
        FinishedRun(dag_id, run_id, str(getattr(state, "value", state)), logical, ended, int(clear or 0))
        for dag_id, run_id, state, logical, ended, clear in rows
    ]


def _failed_tasks(dag_id: str, run_id: str) -> tuple[list[str], str | None]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index)
            .where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.state == "failed"
            )
            .order_by(TaskInstance.end_date)
        ).all()
        # The error of the task that failed first; the names in task order (mapped: task[3]).
        error = _error_line(session, dag_id, run_id, *rows[0]) if rows else None
    names = [task if index < 0 else f"{task}[{index}]" for task, index in sorted(rows)]
    return names, error


def _error_line(session: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
    with contextlib.suppress(Exception):
        from airflow.models.xcom import XComModel  # Airflow 3

        row = session.execute(
            XComModel.get_many(
                run_id=run_id, key=ERROR_XCOM_KEY, dag_ids=dag_id, task_ids=task_id, map_indexes=map_index
            ).with_only_columns(XComModel.value)
        ).first()
        return str(XComModel.deserialize_value(row)) if row else None
    with contextlib.suppress(Exception):
        from airflow.models.xcom import XCom  # Airflow 2

        value = XCom.get_one(
            run_id=run_id, key=ERROR_XCOM_KEY, dag_id=dag_id, task_id=task_id, map_index=map_index
        )
        return None if value is None else str(value)
    return None


def _dag_tags(dag_id: str) -> list[str]:
    from airflow.models.dag import DagTag
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(session.scalars(select(DagTag.name).where(DagTag.dag_id == dag_id)))


def _import_error_files() -> set[str]:
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return set(session.scalars(select(ParseImportError.filename)))


#: The listener every component loads with the plugin.
listener = Alerts()


class ImkitAlertsPlugin(AirflowPlugin):
    """Registered through the ``airflow.plugins`` entry point; inert while ``alerts_room`` is empty."""

    name = "imkit_alerts"
    listeners = [listener]
