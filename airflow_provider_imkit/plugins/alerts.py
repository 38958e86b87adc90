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
import sys
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl  # pluggy's marker for listener hooks (2.x and 3.x)
from airflow.plugins_manager import AirflowPlugin

from airflow_provider_imkit.client.read_back import READ_BACK_CLOCK_SKEW_MS
from airflow_provider_imkit.hooks import log_masking
from airflow_provider_imkit.notifications.default_message import SEE_THE_TASK_LOG, first_line
from airflow_provider_imkit.plugins import history
from airflow_provider_imkit.plugins.config import AlertsConfig, AlertsConfigError, alerts_config
from airflow_provider_imkit.plugins.import_errors import ImportErrorWatch
from airflow_provider_imkit.plugins.ledger import Entry, Ledger, clear_of, kind_key
from airflow_provider_imkit.plugins.metadata import (
    ERROR_XCOM_KEY,
    _airflow_conf,
    _announced,
    _earlier_runs,
    _failed_tasks,
    _is_scheduler,
    _room,
    _run_facts,
    _run_link,
    _task_facts,
    _utc,
)
from airflow_provider_imkit.plugins.sender import BackgroundSender
from airflow_provider_imkit.plugins.sweep import TAKE_OVER_MARGIN, Sweeper

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

log = logging.getLogger(__name__)

#: Sends of one alert before it is given up (marked ``failed`` in the ledger).
MAX_SEND_ATTEMPTS = 5


class Alerts(Sweeper, ImportErrorWatch):
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

    def _leave_error_line(self, task_instance: Any, line: str | None) -> None:
        """In the worker: keep the error line (an XCom) where the scheduler's run alert reads it.
        One local call to the task's supervisor, the only work a hook does beyond enqueueing."""
        if line:
            with contextlib.suppress(Exception):
                task_instance.xcom_push(key=ERROR_XCOM_KEY, value=line[:300])


#: The listener every component loads with the plugin.
listener = Alerts()


class ImkitAlertsPlugin(AirflowPlugin):
    """Registered through the ``airflow.plugins`` entry point; inert while ``alerts_room`` is empty."""

    name = "imkit_alerts"
    listeners = [listener]
