"""The sweep: the alert ledger as an outbox. Each scheduler decides and sends, in its sender
thread, the run alerts no process decided or sent (a process that died in between)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.plugins.ledger import kind_key, owner_alive
from airflow_provider_imkit.plugins.metadata import _finished_runs, _reads_connections, _utc

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_imkit.plugins.config import AlertsConfig
    from airflow_provider_imkit.plugins.ledger import Entry, Ledger
    from airflow_provider_imkit.plugins.sender import BackgroundSender

#: A sweep leaves a run that ended less than this long ago (s) to its own process's listener.
SWEEP_GRACE = 10.0
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


class Sweeper:
    """The sweep, for the listener (:class:`~airflow_provider_imkit.plugins.alerts.Alerts`),
    which decides (``_failed_run``, ``_succeeded_run``) and sends (``_deliver``)."""

    sender: BackgroundSender
    ledger: Ledger
    _clock: Callable[[], float]
    _sweeping: bool
    _sweep_queued: threading.Event
    _failed_run: Callable[..., Any]
    _succeeded_run: Callable[..., Any]
    _deliver: Callable[..., None]

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
