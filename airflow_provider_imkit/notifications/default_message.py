"""The notifier's default alert text, built from whatever the callback context holds.

Callback contexts differ: task callbacks in the worker carry ``ti`` and ``exception``; DAG
callbacks and callbacks for tasks killed from outside run in the DAG processor with no
``ti``, or a ``ti`` without ``end_date``, ``duration`` or ``log_url``. Every value is read
defensively and a line whose data is missing is left out, so a correct alert is always built;
the one exception is the error of a failed task: without it the alert says where to look
(``Error: see the task log``, with the log link when known).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Longest exception line quoted in an alert.
MAX_ERROR_CHARS = 300

_FAILED = {"failed", "upstream_failed", "removed"}
_RETRY = {"up_for_retry", "up_for_reschedule"}
_STARTED = {"running", "queued", "scheduled", "deferred", "restarting"}


def _get(obj: Any, name: str) -> Any:
    """``obj[name]`` or ``obj.name``, None on any failure (contexts raise for missing keys)."""
    if obj is None:
        return None
    try:
        if isinstance(obj, Mapping):
            return obj.get(name)
        return getattr(obj, name, None)
    except Exception:
        return None


def _state(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()


def first_line(error: Any) -> str | None:
    if error is None:
        return None
    text = str(error).strip() or type(error).__name__
    line = text.splitlines()[0].strip()
    if isinstance(error, BaseException) and not line.startswith(type(error).__name__):
        line = f"{type(error).__name__}: {line}"
    if len(line) > MAX_ERROR_CHARS:
        line = line[: MAX_ERROR_CHARS - 3] + "..."
    return line


#: Said instead of the error when a failure callback gets no exception: ``airflow dags test``
#: on Airflow 3.0 to 3.2 hands task failure callbacks none, and DAG-level callbacks never get one.
SEE_THE_TASK_LOG = "see the task log"


def where_the_error_is(log_url: Any) -> str:
    """The error line's text when the error itself is unknown: the log link, else the advice."""
    if isinstance(log_url, str) and log_url:
        return f"{SEE_THE_TASK_LOG}: {log_url}"
    return SEE_THE_TASK_LOG


def event_of(context: Mapping[str, Any]) -> str:
    """
    What happened, from the context of the callback the notifier sits in: ``deadline`` (a
    Deadline Alert), ``sla`` (an Airflow 2 ``sla_miss_callback``), ``retry``, ``failed``,
    ``skipped``, ``succeeded``, ``started`` (``on_execute_callback``: the task is running),
    else ``finished``. The task's state decides before the run's (a task callback sees a
    running run).
    """
    if _get(context, "deadline") is not None:
        return "deadline"  # a Deadline Alert (Airflow 3.1+): the run is late, whatever its state
    if _get(context, "slas") is not None:
        return "sla"
    ti = _get(context, "ti") or _get(context, "task_instance")
    run_state = _state(_get(_get(context, "dag_run"), "state"))
    reason = _get(context, "reason")
    if reason is not None:
        # A DAG-level callback is about the run, and its reason says how it ended ("success",
        # else a failure: task_failure, timed_out...). Airflow 2 hands it the context of some
        # task instance of the run (often a skipped branch), and the run may still read running.
        if run_state in _FAILED or run_state in _RETRY:
            return "failed"
        return "succeeded" if str(reason) == "success" or run_state == "success" else "failed"
    ti_state = _state(_get(ti, "state"))
    for state in (ti_state, run_state):
        if state in _RETRY:
            return "retry"
        if state in _FAILED:
            return "failed"
    if ti_state == "skipped":
        return "skipped"
    if _get(context, "exception") is not None:
        return "failed"
    if "success" in (ti_state, run_state):
        return "succeeded"
    if ti_state in _STARTED:
        return "started"
    return "finished"


def default_message(context: Mapping[str, Any]) -> str:
    """The alert text for a callback context; never raises for missing or odd values."""
    ti = _get(context, "ti") or _get(context, "task_instance")
    dag_run = _get(context, "dag_run")
    dag_id = _get(_get(context, "dag"), "dag_id") or _get(ti, "dag_id") or _get(dag_run, "dag_id")
    task_id = _get(ti, "task_id") or _get(_get(context, "task"), "task_id")
    # Deadline Alerts get the run as a REST API dict, with "dag_run_id".
    run_id = (
        _get(context, "run_id")
        or _get(dag_run, "run_id")
        or _get(dag_run, "dag_run_id")
        or _get(ti, "run_id")
    )
    logical_date = _get(context, "logical_date") or _get(dag_run, "logical_date")
    try_number = _get(ti, "try_number")
    max_tries = _get(ti, "max_tries")
    error = first_line(_get(context, "exception"))
    log_url = _get(ti, "log_url")
    duration = _get(ti, "duration")

    event = event_of(context)
    if event == "sla":
        return _sla_message(context, dag_id)
    # DAG-level callbacks carry a "reason" (task_failure, success...); task-level ones do not.
    reason = _get(context, "reason")
    dag_level = reason is not None or event == "deadline"
    what = f"DAG {dag_id or '(unknown DAG)'} run" if dag_level or not task_id else f"task {dag_id}.{task_id}"
    headline = {
        "failed": f"❌ Airflow {what} failed",
        "retry": f"🔁 Airflow {what} failed and will be retried",
        "succeeded": f"✅ Airflow {what} succeeded",
        "skipped": f"⏭️ Airflow {what} skipped",
        "started": f"▶️ Airflow {what} started",
        "finished": f"ℹ️ Airflow {what} finished",
        "deadline": f"⏰ Airflow {what} missed its deadline",
    }[event]

    lines = [headline]
    if dag_id:
        lines.append(f"DAG: {dag_id}")
    if task_id and not (dag_level and event == "succeeded"):
        map_index = _get(ti, "map_index")
        suffix = f" [{map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
        lines.append(f"{'Failed task' if dag_level else 'Task'}: {task_id}{suffix}")
    if run_id:
        lines.append(f"Run: {run_id}")
    if logical_date:
        lines.append(f"Logical date: {logical_date}")
    if isinstance(try_number, int) and try_number > 0 and not dag_level:
        total = f" of {max_tries + 1}" if isinstance(max_tries, int) and max_tries >= 0 else ""
        lines.append(f"Try: {try_number}{total}")
    if isinstance(duration, int | float) and event == "succeeded" and not dag_level:
        lines.append(f"Duration: {duration:.1f} s")
    if error and event in ("failed", "retry"):
        lines.append(f"Error: {error}")
    elif task_id and event in ("failed", "retry"):
        lines.append(f"Error: {where_the_error_is(log_url)}")
    if reason is not None and event not in ("succeeded", "deadline"):
        lines.append(f"Reason: {reason}")
    deadline_time = _get(_get(context, "deadline"), "deadline_time")
    if deadline_time:
        lines.append(f"Deadline: {deadline_time}")
    if isinstance(log_url, str) and log_url and not (dag_level and event == "succeeded"):
        lines.append(f"Log: {log_url}")
    return "\n".join(lines)


def _sla_message(context: Mapping[str, Any], dag_id: Any) -> str:
    """An Airflow 2 ``sla_miss_callback``: the DAG, and the tasks that missed their SLA."""
    lines = [f"⏱️ Airflow DAG {dag_id or '(unknown DAG)'} missed an SLA"]
    if dag_id:
        lines.append(f"DAG: {dag_id}")
    missed = []
    for sla in _get(context, "slas") or []:
        task_id = _get(sla, "task_id")
        if task_id and task_id not in missed:
            missed.append(str(task_id))
    if missed:
        lines.append(f"Tasks: {', '.join(missed)}")
    blocking = _get(context, "blocking_task_list")
    if isinstance(blocking, str) and blocking.strip():
        lines.append(f"Blocking: {blocking.strip()}")
    return "\n".join(lines)
