"""A real Airflow deployment on one machine, for the demo (``scripts/demo.sh --celery``) and
the deployment test: Postgres (metadata), Redis (Celery broker), and every Airflow 3
component as its own process: ``api-server``, ``scheduler``, ``dag-processor``,
``triggerer`` and one ``celery worker``.

The servers come from wheels that ship their binaries (:mod:`.servers`; the project's
``deploy`` extra), so no root is needed.

Every process is started in its own session and stopped by its PID (and its group) on
:meth:`Deployment.stop`, which the context manager and an ``atexit`` hook call.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.deployment.harness.servers import (
    free_port,
    pg_bin,
    start_postgres,
    start_redis,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery-worker")
TERMINAL_STATES = ("success", "failed")


@dataclass
class Deployment:
    """
    A running deployment. Use as a context manager::

        with Deployment(root=Path(".artifacts/deploy"), dag_sources=[Path("example_dags")],
                        imkit_conn={"host": url, "password": key}) as deployment:
            run_id = deployment.trigger("my_dag")
            state = deployment.wait("my_dag", run_id)

    :param root: a folder of its own (data, logs, AIRFLOW_HOME, DAGs), emptied first.
    :param dag_sources: folders whose ``*.py`` DAG files are copied into the deployment's
        DAGs folder (``root/dags``, :attr:`dags_folder`), where a test may drop more.
    :param imkit_conn: fields of the ``imkit_default`` connection, stored in the metadata
        database with ``airflow connections add`` (no component gets ``AIRFLOW_CONN_*``).
    :param extra_env: more environment for every component (e.g. ``AIRFLOW__IMKIT__*``).
    :param pools: pools to create, name -> slots.
    :param connections: more connections, id -> fields (``host``, ``password``, ``extra``).
    :param worker_concurrency: the Celery worker's task slots.
    """

    root: Path
    dag_sources: Sequence[Path]
    imkit_conn: Mapping[str, Any]
    extra_env: Mapping[str, str] = field(default_factory=dict)
    pools: Mapping[str, int] = field(default_factory=dict)
    connections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    worker_concurrency: int = 2
    commands: dict[str, list[str]] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    pg_port: int = 0
    redis_port: int = 0
    api_port: int = 0

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def dags_folder(self) -> Path:
        return self.root / "dags"

    def start(self) -> None:
        started = time.monotonic()
        atexit.register(self.stop)
        if self.root.exists():
            shutil.rmtree(self.root)
        self.logs.mkdir(parents=True)
        self.dags_folder.mkdir()
        for source in self.dag_sources:
            for path in Path(source).glob("*.py"):
                shutil.copy(path, self.dags_folder / path.name)
        self.pg_port, self.redis_port, self.api_port = free_port(), free_port(), free_port()
        start_postgres(self._spawn, self.root, self.pg_port)
        start_redis(self._spawn, self.root, self.redis_port)
        self.timings["servers"] = time.monotonic() - started
        self.env = self._airflow_env()
        self.airflow("db", "migrate", timeout=600)
        self.timings["db migrate"] = time.monotonic() - started - self.timings["servers"]
        for conn_id, conn in {"imkit_default": self.imkit_conn, **self.connections}.items():
            self.airflow(
                "connections",
                "add",
                conn_id,
                "--conn-type",
                "imkit",
                "--conn-host",
                str(conn["host"]),
                "--conn-password",
                str(conn["password"]),
                *(["--conn-extra", json.dumps(conn["extra"])] if conn.get("extra") else []),
            )
        for pool, slots in self.pools.items():
            self.airflow("pools", "set", pool, str(slots), f"pool {pool}")
        airflow = self._airflow_bin()
        commands = {
            "api-server": [
                airflow,
                "api-server",
                "--port",
                str(self.api_port),
                "--host",
                "127.0.0.1",
                "--workers",
                "1",
            ],
            "scheduler": [airflow, "scheduler"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer", "--skip-serve-logs"],
            "celery-worker": [
                airflow,
                "celery",
                "worker",
                "--concurrency",
                str(self.worker_concurrency),
                "--skip-serve-logs",
            ],
        }
        self.commands.update(commands)
        for name, command in commands.items():
            self._spawn(name, command, self.env)
        wait_for(self._api_healthy, "the API server", 180, self.processes["api-server"])
        self.timings["up"] = time.monotonic() - started

    def stop(self) -> None:
        """Stop every process this deployment started (Airflow first, then the servers)."""
        for name in reversed(list(self.processes)):
            proc = self.processes.pop(name)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            # Children left behind in the group (task supervisors, workers) go too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    # -- faults: kill, restart, add ------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL a component and every process under it (a task runner keeps a process group
        of its own on Airflow 3.3, so killing the group alone would leave a running task)."""
        import psutil

        proc = self.processes.pop(name)
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def restart(self, name: str) -> None:
        """Start a component again (after :meth:`kill`), with the same command."""
        self._spawn(name, self.commands[name], self.env)

    def add(self, name: str, like: str) -> None:
        """Start one more process of a component (a second scheduler, say)."""
        self.commands[name] = self.commands[like]
        self._spawn(name, self.commands[name], self.env)

    def restart_redis(self) -> None:
        """Kill Redis (the Celery broker; it keeps nothing on disk) and start it again on its port."""
        self.kill("redis")
        start_redis(self._spawn, self.root, self.redis_port)

    # -- servers -------------------------------------------------------------------------------

    def _spawn(self, name: str, command: list[str], env: Mapping[str, str] | None, **kwargs: Any) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command,
            env=None if env is None else dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
        log.close()

    # -- Airflow -------------------------------------------------------------------------------

    def _airflow_bin(self) -> str:
        candidate = Path(sys.executable).parent / "airflow"
        return str(candidate) if candidate.exists() else "airflow"

    def _airflow_env(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        home = self.root / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        pg = f"postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow"
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder.resolve()),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "PYTHONWARNINGS": "ignore",
            }
        )
        env.update(self.extra_env)
        return env

    def airflow(self, *args: str, timeout: float = 300) -> str:
        """Run an ``airflow`` CLI command with the deployment's environment; its output."""
        done = subprocess.run(
            [self._airflow_bin(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def _api_healthy(self) -> bool:
        try:
            return self.api("GET", "/api/v2/monitor/health", timeout=3) is not None
        except Exception:
            return False

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        """Call Airflow's REST API (simple auth manager, all admins: no token needed)."""
        import requests

        response = requests.request(method, self.api_url + path, json=body, timeout=timeout)
        response.raise_for_status()
        return response.json() if response.content else None

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        """Wait until the DAG processor has parsed every DAG into the database."""

        def parsed() -> bool:
            known = {d["dag_id"] for d in self.api("GET", "/api/v2/dags?limit=1000")["dags"]}
            return set(dag_ids) <= known

        wait_for(parsed, f"DAGs {dag_ids}", timeout)

    def trigger(
        self, dag_id: str, logical_date: str | None = None, conf: Mapping[str, Any] | None = None
    ) -> str:
        """Unpause and trigger a DAG through the REST API; the run id. ``logical_date``:
        ISO-8601 (templates such as ``{{ ds }}`` need one), or None for a run without one."""
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        body = {"logical_date": logical_date, "conf": dict(conf or {})}
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        return str(run["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def wait(self, runs: Mapping[str, str], timeout: float = 300) -> dict[str, str]:
        """Wait for runs (dag_id -> run_id) to end; their final states."""
        states: dict[str, str] = {}

        def done() -> bool:
            self.check_alive()
            for dag_id, run_id in runs.items():
                states[dag_id] = self.run(dag_id, run_id)["state"]
            return all(state in TERMINAL_STATES for state in states.values())

        with contextlib.suppress(TimeoutError):
            wait_for(done, "DAG runs", timeout)
        return states

    def check_alive(self) -> None:
        """Raise, with the end of its log, if a component has exited."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000"
        result: list[dict[str, Any]] = self.api("GET", path)["task_instances"]
        return result

    def memory_mib(self) -> dict[str, float]:
        """Resident memory of each component, its child processes included (MiB)."""
        import psutil

        usage: dict[str, float] = {}
        for name, proc in self.processes.items():
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(proc.pid)
                rss = parent.memory_info().rss + sum(
                    child.memory_info().rss for child in parent.children(recursive=True)
                )
                usage[name] = rss / 2**20
        return usage

    def log_files(self) -> Iterator[Path]:
        """Every log file: each component's output and every task log."""
        yield from (p for p in self.logs.rglob("*") if p.is_file())
        yield from (p for p in (self.root / "home" / "logs").rglob("*") if p.is_file())

    def dump_database(self) -> str:
        """The whole metadata database as SQL text (pg_dump)."""
        pg_dump = pg_bin("pg_dump")
        done = subprocess.run(
            [str(pg_dump), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "airflow", "airflow"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return done.stdout
