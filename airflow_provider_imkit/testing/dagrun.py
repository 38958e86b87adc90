"""Run DAGs for real (``airflow dags test`` in a child process) against a sandbox.

Used by the demo and the end-to-end tests, and usable in your own tests
(``from airflow_provider_imkit.testing import ImkitSandbox, airflow_env, migrate, run_dag``)::

    with ImkitSandbox(rooms=["ops"], users=["bot"]) as sandbox, tempfile.TemporaryDirectory() as home:
        env = airflow_env(home, "dags/", {"AIRFLOW_CONN_IMKIT_DEFAULT": sandbox.connection_json()})
        migrate(env)
        outcome = run_dag("my_dag", env)
        assert outcome.succeeded, outcome.output

Only the standard library is imported here: Airflow runs in the child processes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class DagRunOutcome:
    """The result of one ``airflow dags test`` run: exit code, combined output, seconds.

    ``output`` is stdout and stderr with terminal styling removed: Airflow 3.0 prints a task's
    traceback with rich, in colour and bold, even when the output is not a terminal.
    """

    dag_id: str
    returncode: int
    output: str
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain_text(output: str) -> str:
    """``output`` without ANSI escape sequences (colours, bold)."""
    return _ANSI_ESCAPE.sub("", output)


def airflow_bin() -> str:
    """The ``airflow`` executable of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def airflow_env(
    airflow_home: str | os.PathLike[str],
    dags_folder: str | os.PathLike[str],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment for child Airflow processes: own home, SQLite, no examples, quiet.

    :param dags_folder: the folder of the DAG files; relative paths are taken from the current
        directory (write ``Path(__file__).parent / "dags"`` in a test).
    :raises FileNotFoundError: ``dags_folder`` is not a folder (Airflow would only say later
        that the DAG cannot be found).
    """
    folder = Path(dags_folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"dags_folder {str(dags_folder)!r} is not a folder (resolved: {folder})")
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.update(extra or {})
    return env


def migrate(env: Mapping[str, str], timeout: float = 300) -> None:
    """Create the metadata database (``airflow db migrate``); raises with its output on failure."""
    done = subprocess.run(
        [airflow_bin(), "db", "migrate"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def run_dag(
    dag_id: str, env: Mapping[str, str], logical_date: str | None = None, timeout: float = 600
) -> DagRunOutcome:
    """Run one DAG with ``airflow dags test``; its exit code is 1 when the run failed."""
    command = [airflow_bin(), "dags", "test", dag_id]
    if logical_date:
        command.append(logical_date)
    started = time.monotonic()
    done = subprocess.run(
        command,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return DagRunOutcome(dag_id, done.returncode, plain_text(done.stdout), time.monotonic() - started)
