# ruff: noqa: E501  (figure tables and an embedded DAG read best unwrapped)
"""Side-by-side performance figures for the README's "Performance" section.

    .venv/bin/python -m benchmarks.perf sends      # per-message cost: raw requests, hook, hook per message, HttpHook
    .venv/bin/python -m benchmarks.perf fanout     # 500 rooms: one batch request vs 500 sends
    .venv/bin/python -m benchmarks.perf memory     # peak RSS of 2,000 sends: hook vs raw requests
    .venv/bin/python -m benchmarks.perf sandbox    # sandbox throughput, 1 and 8 clients
    .venv/bin/python -m benchmarks.perf imports    # import costs and DAG parse time
    .venv/bin/python -m benchmarks.perf all

Timed variants run interleaved in one process (A B C D, A B C D, ...) and the medians of
the repeats are compared, so machine noise hits every variant alike. Log output of the
hook (one INFO line per send, as in a task log) goes to a temporary file while timing.
No figure here is asserted by a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key-5e2c9a71d3f0"
BODY = {"room": "bench", "sender": "bot", "message": "benchmark message", "messageType": "text"}
HEADERS = {
    "IM-API-KEY": API_KEY,
    "Content-Type": "application/json; charset=utf-8",
    "Accept": "application/json",
}


@contextlib.contextmanager
def fast_server() -> Iterator[str]:
    """The minimal keep-alive server (benchmarks/fastserver.py) in its own process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fastserver", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def stdout_to_file() -> Iterator[None]:
    """Send fd 1 (where Airflow's log lines go in a plain process) to a temp file."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def set_connections(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    os.environ["AIRFLOW_CONN_IMKIT_BENCH"] = json.dumps(
        {"conn_type": "imkit", "host": url, "password": API_KEY}
    )
    os.environ["AIRFLOW_CONN_HTTP_BENCH"] = json.dumps(
        {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
    )
    # HttpHook as its users keep a key: in the connection (extras are sent as headers), where
    # Airflow masks it when the task fetches the connection, as it masks the IMKIT key.
    os.environ["AIRFLOW_CONN_HTTP_BENCH_KEY"] = json.dumps(
        {"conn_type": "http", "host": host, "port": int(port), "schema": "http", "extra": HEADERS}
    )


def send_variants(url: str) -> dict[str, Callable[[int], None]]:
    import requests
    from airflow.providers.http.hooks.http import HttpHook

    from airflow_provider_imkit.hooks.imkit import ImkitHook

    data = json.dumps(BODY, ensure_ascii=False, separators=(",", ":")).encode()
    shared = ImkitHook("imkit_bench")

    def raw(n: int) -> None:
        with requests.Session() as session:
            for _ in range(n):
                response = session.post(url + "/messages", data=data, headers=HEADERS, timeout=(10, 30))
                response.raise_for_status()
                assert response.json()["RC"] == 0

    def hook(n: int) -> None:
        for _ in range(n):
            shared.send_message(room="bench", sender="bot", message="benchmark message")

    def hook_per_message(n: int) -> None:
        for _ in range(n):
            with ImkitHook("imkit_bench") as one:
                one.send_message(room="bench", sender="bot", message="benchmark message")

    def http_hook(n: int) -> None:
        for _ in range(n):
            response = HttpHook(method="POST", http_conn_id="http_bench").run(
                endpoint="messages", data=data.decode(), headers=HEADERS
            )
            assert response.json()["RC"] == 0

    def http_hook_key_in_connection(n: int) -> None:
        for _ in range(n):
            response = HttpHook(method="POST", http_conn_id="http_bench_key").run(
                endpoint="messages", data=data.decode()
            )
            assert response.json()["RC"] == 0

    return {
        "a raw requests.Session": raw,
        "b one ImkitHook": hook,
        "c ImkitHook per message": hook_per_message,
        "d HttpHook.run per message": http_hook,
        "e HttpHook.run per message, key in the connection": http_hook_key_in_connection,
    }


def interleaved(
    variants: dict[str, Callable[[int], None]],
    n: int,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each variant, over ``repeats`` interleaved rounds of ``n``,
    by ``clock``: wall time (``time.perf_counter``), or the calling thread's CPU time
    (``time.thread_time``: what the caller's own code costs, whatever else the machine runs)."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for variant in variants.values():
        variant(min(n, 50))  # warm up: imports, connections, caches
    for _ in range(repeats):
        for name, variant in variants.items():
            started = clock()
            variant(n)
            times[name].append((clock() - started) / n)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_sends(n: int, repeats: int) -> list[str]:
    with fast_server() as url:
        set_connections(url)
        variants = send_variants(url)
        with stdout_to_file():
            cpu = interleaved(variants, n, repeats, time.thread_time)
            wall = interleaved(variants, n, repeats)
    lines = ["| variant | CPU of the calling thread per message | wall per message |", "|---|---|---|"]
    lines += [f"| {name} | {cpu[name] * 1e6:.0f} µs | {wall[name] * 1e6:.0f} µs |" for name in sorted(cpu)]
    for label, result in (("CPU", cpu), ("wall", wall)):
        a, b, c, d, e = (result[name] for name in sorted(result))
        ratios = f"b/a = {b / a:.3f}, c/a = {c / a:.3f}, c/d = {c / d:.3f}, c/e = {c / e:.3f}"
        lines.append(f"| {label} ratios | {ratios} | |")
    return lines


def bench_fanout(rooms: int, repeats: int) -> list[str]:
    from airflow_provider_imkit.hooks.imkit import ImkitHook
    from airflow_provider_imkit.sandbox import ImkitSandbox

    room_ids = [f"room-{i:03d}" for i in range(rooms)]
    with ImkitSandbox(api_key=API_KEY, rooms=room_ids, users=["bot"], rate_limit=None) as sandbox:
        os.environ["AIRFLOW_CONN_IMKIT_BENCH"] = json.dumps(
            {"conn_type": "imkit", "host": sandbox.url, "password": API_KEY}
        )
        hook = ImkitHook("imkit_bench")

        def batch(_: int) -> None:
            hook.send_batch(
                message="Hello $name$",
                rooms=room_ids,
                values={r: {"$name$": r} for r in room_ids},
                sender="bot",
            )

        def sends(_: int) -> None:
            for room in room_ids:
                hook.send_message(room=room, sender="bot", message=f"Hello {room}")

        with stdout_to_file():
            result = interleaved(
                {"one batch request": batch, f"{rooms} send_message calls": sends}, 1, repeats
            )
        sandbox.flush_batches()
    batch_s, sends_s = result["one batch request"], result[f"{rooms} send_message calls"]
    return [
        f"| one batch request to {rooms} rooms | {batch_s * 1e3:.1f} ms |",
        f"| {rooms} send_message calls | {sends_s * 1e3:.1f} ms |",
        f"| ratio | sends / batch = {sends_s / batch_s:.1f} |",
    ]


def _memory_child(variant: str, n: int, url: str) -> None:
    """In a fresh process: peak RSS growth of ``n`` sends."""
    import requests

    set_connections(url)
    from airflow_provider_imkit.hooks.imkit import ImkitHook

    data = json.dumps(BODY).encode()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with stdout_to_file():
        if variant == "raw":
            with requests.Session() as session:
                for _ in range(n):
                    session.post(url + "/messages", data=data, headers=HEADERS, timeout=(10, 30)).json()
        else:
            with ImkitHook("imkit_bench") as hook:
                for _ in range(n):
                    hook.send_message(room="bench", sender="bot", message="benchmark message")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kib": before, "after_kib": after}))


def bench_memory(n: int) -> list[str]:
    lines = []
    peaks = {}
    with fast_server() as url:
        for variant in ("raw", "hook"):
            code = f"from benchmarks.perf import _memory_child; _memory_child({variant!r}, {n}, {url!r})"
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
            )
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            peaks[variant] = figures
            lines.append(
                f"| {variant}: peak RSS after {n} sends | {figures['after_kib'] / 1024:.1f} MiB "
                f"(+{(figures['after_kib'] - figures['before_kib']) / 1024:.1f} MiB during the sends) |"
            )
    lines.append(
        f"| ratio | hook / raw peak RSS = {peaks['hook']['after_kib'] / peaks['raw']['after_kib']:.2f} |"
    )
    return lines


def bench_sandbox(n: int) -> list[str]:
    import requests

    from airflow_provider_imkit.sandbox import ImkitSandbox

    data = json.dumps(BODY).encode()
    lines = []
    with ImkitSandbox(api_key=API_KEY, rooms=["bench"], users=["bot"], rate_limit=None) as sandbox:
        for clients in (1, 8):

            def client(count: int) -> None:
                with requests.Session() as session:
                    for _ in range(count):
                        session.post(
                            sandbox.url + "/messages", data=data, headers=HEADERS, timeout=10
                        ).raise_for_status()

            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(client, [n // clients] * clients))
            seconds = time.perf_counter() - started
            lines.append(
                f"| sandbox, {clients} client{'s' if clients > 1 else ''} (threads, same process) | {n / seconds:.0f} sends/s |"
            )
            sandbox.reset()
    return lines


def _import_ms(codes: list[str], repeats: int = 15) -> list[float]:
    """Median wall time of a fresh interpreter running each of ``codes`` (interleaved), in ms."""
    times: list[list[float]] = [[] for _ in codes]
    for _ in range(repeats):
        for index, code in enumerate(codes):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
            times[index].append((time.perf_counter() - started) * 1000)
    return [statistics.median(values) for values in times]


def _importtime_us(module: str, after: str = "") -> tuple[int, list[str]]:
    """Cumulative import time of ``module`` per ``-X importtime`` (after importing ``after``)."""
    code = (f"import {after}; " if after else "") + f"import {module}"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stderr
    rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:") and "|" in line]
    names = [row[2].strip() for row in rows]
    total = next(int(row[1]) for row in rows if row[2].strip() == module)
    return total, names


def bench_imports() -> list[str]:
    # An installed wheel has its bytecode compiled; an editable checkout may not (this
    # machine sets PYTHONDONTWRITEBYTECODE=1), so compile it first to measure the same thing.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "airflow_provider_imkit")], check=True
    )
    info_us, info_names = _importtime_us("airflow_provider_imkit.get_provider_info")
    heavy = [n for n in info_names if n.split(".")[0] in ("airflow", "requests", "urllib3", "tenacity")]
    op_us, _ = _importtime_us("airflow_provider_imkit.operators.imkit", after="airflow.sdk")
    note_us, _ = _importtime_us(
        "airflow_provider_imkit.notifications.imkit",
        after="airflow.sdk, airflow_provider_imkit.operators.imkit",
    )
    base, both = _import_ms(
        [
            "import airflow.sdk",
            "import airflow.sdk, airflow_provider_imkit.operators.imkit, airflow_provider_imkit.notifications.imkit",
        ]
    )
    imkit_dag, python_dag = bench_dag_parse()
    return [
        f"| import get_provider_info (-X importtime) | {info_us / 1000:.2f} ms; heavy modules pulled in: {heavy or 'none'} |",
        f"| import the operators after airflow.sdk (-X importtime, cumulative) | {op_us / 1000:.1f} ms |",
        f"| import the notifier after that (-X importtime, cumulative) | {note_us / 1000:.1f} ms |",
        f"| whole process: `import airflow.sdk` vs + operators + notifier | {base:.0f} ms vs {both:.0f} ms (+{both - base:.0f} ms) |",
        f"| DagBag parse: example_imkit_send_message vs the same DAG with PythonOperators | {imkit_dag:.1f} ms vs {python_dag:.1f} ms ({imkit_dag / python_dag:.2f}x) |",
    ]


PYTHON_TWIN = """
from __future__ import annotations
import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow.providers.standard.operators.python import PythonOperator

def noop(**_: object) -> None:
    return None

with DAG(dag_id="twin_python", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), schedule=None, catchup=False) as dag:
    start = PythonOperator(task_id="notify_start", python_callable=noop, op_kwargs={"room": "data-pipeline", "message": "Pipeline {{ dag.dag_id }} started"})

    @task
    def extract() -> int:
        return 1284

    rows = extract()
    report = PythonOperator(task_id="report_rows", python_callable=noop, op_kwargs={"room": "data-pipeline", "mentions": ["alice", "bob"]})
    announce = PythonOperator(task_id="announce_quietly", python_callable=noop, op_kwargs={"room": "data-pipeline"})
    fan_out = PythonOperator.partial(task_id="notify_teams", python_callable=noop).expand(op_kwargs=[{"room": r} for r in ["a", "b", "c"]])
    end = PythonOperator(task_id="notify_end", python_callable=noop, op_kwargs={"room": "data-pipeline"})
    start >> rows >> report >> announce >> fan_out >> end
"""


def bench_dag_parse(repeats: int = 9) -> tuple[float, float]:
    """Median DagBag parse time of the example DAG and of its PythonOperator twin, in ms."""
    with tempfile.TemporaryDirectory() as folder:
        imkit_dir, python_dir = Path(folder, "imkit"), Path(folder, "python")
        imkit_dir.mkdir()
        python_dir.mkdir()
        (imkit_dir / "dag.py").write_text(
            (ROOT / "example_dags" / "example_imkit_send_message.py").read_text()
        )
        (python_dir / "dag.py").write_text(PYTHON_TWIN)
        code = (
            "import sys, time, statistics\n"
            "try:\n    from airflow.dag_processing.dagbag import DagBag\n"
            "except ImportError:\n    from airflow.models.dagbag import DagBag\n"
            "import airflow_provider_imkit.operators.imkit, airflow.providers.standard.operators.python\n"
            "out = []\n"
            f"for _ in range({repeats}):\n"
            "    for folder in sys.argv[1:]:\n"
            "        t = time.perf_counter(); bag = DagBag(dag_folder=folder); out.append((folder, time.perf_counter() - t))\n"
            "        assert not bag.import_errors, bag.import_errors\n"
            "for folder in sys.argv[1:]:\n"
            "    print(statistics.median(s for f, s in out if f == folder) * 1000)\n"
        )
        env = {
            **os.environ,
            "AIRFLOW_HOME": folder,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONWARNINGS": "ignore",
        }
        out = subprocess.run(
            [sys.executable, "-c", code, str(imkit_dir), str(python_dir)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["sends", "fanout", "memory", "sandbox", "imports", "all"])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sections: dict[str, Callable[[], list[str]]] = {
        "sends": lambda: bench_sends(args.messages, args.repeats),
        "fanout": lambda: bench_fanout(500, args.repeats),
        "memory": lambda: bench_memory(args.messages),
        "sandbox": lambda: bench_sandbox(args.messages),
        "imports": bench_imports,
    }
    chosen = list(sections) if args.what == "all" else [args.what]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for name in chosen:
        print(f"\n{name}:\n| figure | value |\n|---|---|")
        for line in sections[name]():
            print(line, flush=True)


if __name__ == "__main__":
    main()
