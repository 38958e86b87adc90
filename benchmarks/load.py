"""Load without loss: many messages from many threads through ONE shared hook.

Every message carries a unique token; the sandbox's rate limit is lowered so that 429s
happen. The sandbox's clock is a fake one that the hook's retry waits advance, so a
429's ``retryAfter`` costs no real time. At the end every token must be stored exactly
once: none lost, none doubled.

    .venv/bin/python -m benchmarks.load                 # 20,000 messages, 8 threads
    .venv/bin/python -m benchmarks.load --messages 2000 --threads 4 --rate-limit 200
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from airflow_provider_imkit.exceptions import ImkitError
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.sandbox import ImkitSandbox

API_KEY = "load-test-key-8c1f2a9d"
CONN_ID = "imkit_load"


class FakeClock:
    """Wall time plus whatever the hook 'slept': shared by the sandbox and the hook."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self.slept = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds
            self.slept += seconds


@dataclass
class LoadReport:
    messages: int
    threads: int
    rate_limit: int
    seconds: float
    throughput: float  # messages per second of real time
    requests: int
    rate_limited: int  # 429 answers seen
    retries: int  # requests beyond one per message
    errors: int  # sends that raised
    lost: int
    doubled: int


def run_load(messages: int = 20_000, threads: int = 8, rate_limit: int = 1000) -> LoadReport:
    """Send ``messages`` unique messages from ``threads`` threads; report what arrived."""
    clock = FakeClock()
    tokens = [f"load-{index:06d}-{uuid.uuid4().hex[:8]}" for index in range(messages)]
    errors: list[str] = []
    with ImkitSandbox(
        api_key=API_KEY, rooms=["load"], users=["bot"], rate_limit=rate_limit, clock=clock.now
    ) as sandbox:
        variable = f"AIRFLOW_CONN_{CONN_ID.upper()}"
        previous = os.environ.get(variable)
        os.environ[variable] = json.dumps({"conn_type": "imkit", "host": sandbox.url, "password": API_KEY})
        try:
            # One hook shared by every thread: it keeps a pooled session per thread.
            with ImkitHook(CONN_ID, sleep=clock.sleep, retry=10) as hook:

                def send(token: str) -> None:
                    try:
                        hook.send_message(room="load", sender="bot", message=token)
                    except ImkitError as exc:
                        errors.append(f"{token}: {exc}")

                started = time.perf_counter()
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(send, tokens))
                seconds = time.perf_counter() - started
        finally:
            if previous is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = previous
        statuses = Counter(record["status"] for record in sandbox.requests())
        stored = Counter(message["message"] for message in sandbox.received("load"))
    requests = sum(statuses.values())
    return LoadReport(
        messages=messages,
        threads=threads,
        rate_limit=rate_limit,
        seconds=round(seconds, 2),
        throughput=round(messages / seconds, 1),
        requests=requests,
        rate_limited=statuses.get(429, 0),
        retries=requests - messages,
        errors=len(errors),
        lost=sum(1 for token in tokens if stored[token] == 0),
        doubled=sum(1 for token in tokens if stored[token] > 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rate-limit", type=int, default=1000, help="per minute of the fake clock")
    args = parser.parse_args()
    report = run_load(args.messages, args.threads, args.rate_limit)
    for name, value in asdict(report).items():
        print(f"{name:>13}: {value}")
    if report.lost or report.doubled or report.errors:
        raise SystemExit("messages were lost, doubled or failed")


if __name__ == "__main__":
    main()
