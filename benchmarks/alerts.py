"""The time a listener hook of the alerts plugin adds to the calling Airflow thread.

    .venv/bin/python -m benchmarks.alerts          # 10,000 task-failure events, twice

10,000 ``on_task_instance_failed`` calls with the ``task_failed`` event on, while the
plugin's background sender posts them to the sandbox: once with the sandbox answering
normally, once with every response delayed 5 s (the queue fills and further alerts are
dropped and counted). Median and p99 of the per-call time, in microseconds. Goal: under
200 µs median and 1 ms p99 in both cases. No test asserts these figures.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from types import SimpleNamespace

from airflow_provider_imkit.plugins.alerts import Alerts
from airflow_provider_imkit.sandbox import Fault, ImkitSandbox

API_KEY = "bench-key-5e2c9a71d3f0"
EVENTS = 10_000


def measure(delay: float) -> tuple[float, float, int, int]:
    with ImkitSandbox(api_key=API_KEY, rooms=["ops"], users=["airflow"], rate_limit=None) as sandbox:
        os.environ["AIRFLOW_CONN_IMKIT_DEFAULT"] = json.dumps(
            {"conn_type": "imkit", "host": sandbox.url, "password": API_KEY, "extra": {"deadline": 30}}
        )
        if delay:
            sandbox.inject("*", Fault("delay", delay=delay), times=EVENTS)
        alerts = Alerts({"alerts_room": "ops", "alerts_events": "task_failed"}.get)
        error = RuntimeError("warehouse rejected 42 rows")
        times = []
        for index in range(EVENTS):
            ti = SimpleNamespace(dag_id="etl", task_id="load", run_id="r1", map_index=index, state="failed")
            started = time.perf_counter_ns()
            alerts.on_task_instance_failed(None, ti, error)
            times.append((time.perf_counter_ns() - started) / 1000)
        dropped = alerts.sender.dropped  # at the queue, while the hooks were called
        logging.getLogger("airflow_provider_imkit").setLevel(logging.CRITICAL)  # sends cut by the stop
        alerts.sender.stop(0.1)
        sandbox.clear_faults()
        stored = len(sandbox.received("ops"))
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)], dropped, stored


def main() -> None:
    print("| IMKIT answers | median µs per hook call | p99 µs | dropped at the full queue (1,000) |")
    print("|---|---|---|---|")
    for label, delay in (("normally", 0.0), ("every response delayed 5 s", 5.0)):
        median, p99, dropped, _ = measure(delay)
        print(f"| {label} | {median:.1f} | {p99:.1f} | {dropped:,} of {EVENTS:,} |")


if __name__ == "__main__":
    main()
