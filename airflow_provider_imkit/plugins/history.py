"""What an alert says, decided from the DAG's run history and the alert ledger: pure
functions, table-tested.

The history comes from Airflow's metadata (earlier runs of the DAG) and the alerts already
decided from the ledger (plugins/ledger.py), never from process memory, so the decisions hold
with several schedulers and after restarts. Runs from before the plugin was on have no
alert in the ledger: a failure after them is announced in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from airflow_provider_imkit.notifications.default_message import SEE_THE_TASK_LOG

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime, timedelta

Notice = Literal["full", "repeat"]


@dataclass(frozen=True)
class EarlierRun:
    """A finished earlier run of the DAG: its state, when it ended, and its id."""

    state: str
    end: datetime
    run_id: str = ""


def failure_streak(earlier: Sequence[EarlierRun]) -> list[EarlierRun]:
    """The failed runs right before this one, oldest first (``earlier`` is newest first)."""
    streak = []
    for run in earlier:
        if run.state != "failed":
            break
        streak.append(run)
    return streak[::-1]


def failure_notice(notices: Sequence[datetime], now: datetime, interval: timedelta) -> Notice | None:
    """
    What a failed run posts, from when the streak's earlier failures were announced
    (``notices``: the ledger's full and repeat alerts for the runs of the streak):
    ``full`` when none was (the streak's first failure, or its earlier failures happened
    while the plugin was off), ``repeat`` ("still failing") when ``interval`` has passed since
    the last one, else nothing. ``now`` is the run's end, so any process decides alike.
    """
    if not notices:
        return "full"
    return "repeat" if now - max(notices) >= interval else None


def duration_text(seconds: float) -> str:
    """``2 h 05 min``, ``4 min 10 s``, ``12 s``."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


#: Airflow's reasons for a failed run (the ``msg`` of ``on_dag_run_failed``), as the headline says them.
REASONS = {
    "timed_out": "timed out (dagrun_timeout)",
    "task_failure": "failed",
    "all_tasks_deadlocked": "failed: its tasks are deadlocked",
}


def failed_run_headline(dag_id: str, count: int, reason: str | None) -> str:
    """``❌ Airflow DAG etl run failed: 2 tasks failed``; the reason Airflow gave when it is not
    a task failure (``run timed out (dagrun_timeout)``); no "0 tasks failed"."""
    reason = (reason or "task_failure").strip()
    # The API server says "Dag Run's state was manually set to `failed`."
    said = "was marked failed by hand" if "manually" in reason else REASONS.get(reason, f"failed ({reason})")
    head = f"❌ Airflow DAG {dag_id} run {said}"
    return f"{head}: {count} task{'s' if count != 1 else ''} failed" if count else head


def failed_run_text(
    *,
    dag_id: str,
    run_id: str,
    logical_date: object,
    failed_tasks: Sequence[str],
    error: str | None,
    link: str | None,
    reason: str | None = None,
    shown: int = 5,
) -> str:
    """ONE message for a failed run, however many tasks failed; ``reason`` is Airflow's
    (``timed_out``, ``task_failure``...; None when not known)."""
    count = len(failed_tasks)
    lines = [failed_run_headline(dag_id, count, reason)]
    lines.append(f"Run: {run_id}")
    if logical_date:
        lines.append(f"Logical date: {logical_date}")
    if failed_tasks:
        more = f" and {count - shown} more" if count > shown else ""
        lines.append(f"Failed: {', '.join(failed_tasks[:shown])}{more}")
    if error or failed_tasks:
        lines.append(f"First error: {error or SEE_THE_TASK_LOG}")
    if link:
        lines.append(f"Link: {link}")
    return "\n".join(lines)


def still_failing_text(dag_id: str, runs_in_a_row: int, since: datetime, link: str | None) -> str:
    text = f"🔁 Airflow DAG {dag_id} still failing: {runs_in_a_row} runs in a row"
    text += f" since {since:%Y-%m-%d %H:%M} UTC"
    return f"{text}\n{link}" if link else text


def recovered_text(dag_id: str, failed_runs: int, down_seconds: float, link: str | None) -> str:
    runs = f"{failed_runs} failed run{'s' if failed_runs != 1 else ''}"
    text = f"✅ Airflow DAG {dag_id} recovered after {runs}, down for {duration_text(down_seconds)}"
    return f"{text}\n{link}" if link else text
