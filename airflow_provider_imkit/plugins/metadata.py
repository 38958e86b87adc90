"""What the alerts read of Airflow's metadata (in the sender thread, never in a listener hook):
runs, failed tasks and their error lines, tags, earlier runs, import errors, links, config."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_imkit.plugins import history
from airflow_provider_imkit.version_compat import AIRFLOW_V_3_0_PLUS

#: The error line a failed task leaves for the scheduler's run alert (an XCom of the task).
ERROR_XCOM_KEY = "imkit_alerts_error"

if TYPE_CHECKING:
    from airflow_provider_imkit.plugins.config import AlertsConfig
    from airflow_provider_imkit.plugins.ledger import Entry


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
