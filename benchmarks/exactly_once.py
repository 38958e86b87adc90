"""Exactly once when IMKIT stores late: the settle rule side by side with reading back at once.

A sandbox answers every ``POST /messages`` only after 0.5-8 s (uniformly random, seeded)
and stores the message then, while the client's read timeout is 1 s: most sends time out
although IMKIT goes on to store them. Each send carries a unique token; after the last late
store has landed the room is counted: a token stored twice is a duplicate, one never stored a
loss. Two paths, each in two modes, in one run:

* hook retries: one ``ImkitHook.send_message`` per token (3 attempts, ``reconcile``);
* task retries: no resend inside a try (1 attempt); a failed try is retried the way Airflow
  does (up to 3 tries, 1 s apart), each later try through the operators' own path
  (``delivery.deliver`` with the earlier try's facts);

and the modes: ``read back at once`` (``read_back_settle=0``: what the provider did before
the settle rule) and ``settle 10 s`` (the default). Latency is each token's whole send, and
the slow path's: tokens whose first attempt got no answer.

    .venv/bin/python -m benchmarks.exactly_once               # 200 sends per path and mode
    .venv/bin/python -m benchmarks.exactly_once --sends 40 --threads 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import ImkitError
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.operators.delivery import EarlierTry, deliver
from airflow_provider_imkit.sandbox import Fault, ImkitSandbox

API_KEY = "exactly-once-key-5d2e9a71"
CONN_ID = "imkit_late"
ROOM = "late"
#: IMKIT stores (and answers) this long after each request, in seconds.
STORE_AFTER = (0.5, 8.0)
READ_TIMEOUT = 1.0
TASK_TRIES, TASK_RETRY_DELAY = 3, 1.0


@dataclass
class Result:
    path: str
    mode: str
    sends: int
    duplicates: int
    lost: int
    errors: int
    p50: float
    p99: float
    slow_p50: float
    slow_p99: float
    seconds: float


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(path: str, settle: float, sends: int, threads: int, seed: int) -> Result:
    rng = random.Random(seed)
    tokens = [f"late-{index:04d}-{uuid.uuid4().hex[:8]}" for index in range(sends)]
    latencies: dict[str, float] = {}
    slow: set[str] = set()
    errors: list[str] = []
    lock = threading.Lock()
    with ImkitSandbox(api_key=API_KEY, rooms=[ROOM], users=["bot"], rate_limit=None) as sandbox:
        for _ in range(sends * 4):  # every POST, resends included, is answered late
            sandbox.inject("/messages", Fault("delay", delay=rng.uniform(*STORE_AFTER)))
        extra = {"read_timeout": READ_TIMEOUT, "read_back_settle": settle}
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
            {"conn_type": "imkit", "host": sandbox.url, "password": API_KEY, "extra": extra}
        )

        def send(token: str) -> None:
            started = time.monotonic()
            try:
                if path == "hook retries":
                    with ImkitHook(CONN_ID) as hook:
                        hook.send_message(room=ROOM, sender="bot", message=token)
                else:
                    task_tries(token, started)
            except ImkitError as exc:
                with lock:
                    errors.append(f"{token}: {exc}")
            with lock:
                latencies[token] = time.monotonic() - started
                if latencies[token] > READ_TIMEOUT:
                    slow.add(token)

        def task_tries(token: str, started: float) -> None:
            run_start_ms = int(time.time() * 1000)
            for try_number in range(1, TASK_TRIES + 1):
                earlier = None if try_number == 1 else EarlierTry(run_start_ms - 30_000, time.time())
                try:
                    deliver(
                        imkit_conn_id=CONN_ID,
                        retry=RetryPolicy(max_attempts=1, settle=settle),
                        timeout=None,
                        message={"room": ROOM, "sender": "bot", "message": token},
                        earlier=earlier,
                    )
                    return
                except ImkitError:
                    if try_number == TASK_TRIES:
                        raise
                    time.sleep(TASK_RETRY_DELAY)  # Airflow's retry_delay

        began = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(send, tokens))
        seconds = time.monotonic() - began
        time.sleep(STORE_AFTER[1] + 1)  # every late store lands
        stored = Counter(m["message"] for m in sandbox.received(ROOM))
        sandbox.clear_faults()
    slow_latencies = [latencies[token] for token in slow]
    return Result(
        path=path,
        mode="read back at once" if settle == 0 else f"settle {settle:g} s",
        sends=sends,
        duplicates=sum(max(0, stored[token] - 1) for token in tokens),
        lost=sum(1 for token in tokens if stored[token] == 0),
        errors=len(errors),
        p50=percentile(list(latencies.values()), 0.5),
        p99=percentile(list(latencies.values()), 0.99),
        slow_p50=percentile(slow_latencies, 0.5),
        slow_p99=percentile(slow_latencies, 0.99),
        seconds=seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    # Each late send logs its read-backs (Airflow 3 routes the hook's log through structlog):
    # the table is the output.
    logging.disable(logging.WARNING)
    with contextlib.suppress(ImportError):
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    print(
        "| path | mode | sends | duplicates | lost | raised | latency p50 / p99 (s) "
        "| slow path p50 / p99 (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for path in ("hook retries", "task retries"):
        for settle in (0.0, 10.0):
            result = run(path, settle, args.sends, args.threads, args.seed)
            results.append(result)
            print(
                f"| {result.path} | {result.mode} | {result.sends} | {result.duplicates} | {result.lost} "
                f"| {result.errors} | {result.p50:.1f} / {result.p99:.1f} "
                f"| {result.slow_p50:.1f} / {result.slow_p99:.1f} |",
                flush=True,
            )
    if any(r.duplicates or r.lost for r in results if r.mode != "read back at once"):
        raise SystemExit("the settle rule let a duplicate or a loss through")


if __name__ == "__main__":
    main()
