"""What an alert says, decided from the DAG's run history: pure functions, table-tested.

The history comes from Airflow's metadata (earlier runs of the DAG), never from process
memory, so the decisions hold with several schedulers and after restarts.
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
    """A finished earlier run of the DAG: its state and when it ended."""

    state: str
    end: datetime


def failure_streak(earlier: Sequence[EarlierRun]) -> list[datetime]:
    """End times of the failed runs right before this one, oldest first (``earlier`` is newest first)."""
    streak = []
    for run in earlier:
        if run.state != "failed":
            break
        streak.append(run.end)
    return streak[::-1]


def failure_notice(streak: Sequence[datetime], now: datetime, interval: timedelta) -> Notice | None:
    """
    What a failed run posts: ``full`` for the first failure, ``repeat`` ("still failing") when
    ``interval`` has passed since the last notice of the streak, else nothing.

    The notices of the streak are replayed from its end times (the first failure alerted in
    full, then one notice each time ``interval`` had passed since the previous one), so every
    scheduler reaches the same answer from the same history.
    """
    if not streak:
        return "full"
    last_notice = streak[0]
    for end in streak[1:]:
        if end - last_notice >= interval:
            last_notice = end
    return "repeat" if now - last_notice >= interval else None


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


def failed_run_text(
    *,
    dag_id: str,
    run_id: str,
    logical_date: object,
    failed_tasks: Sequence[str],
    error: str | None,
    link: str | None,
    shown: int = 5,
) -> str:
    """ONE message for a failed run, however many tasks failed."""
    count = len(failed_tasks)
    lines = [f"❌ Airflow DAG {dag_id} run failed: {count} task{'s' if count != 1 else ''} failed"]
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
