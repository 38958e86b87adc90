"""Approvals at deployment scale: N approval waits in one event loop, as one triggerer runs
them, against the sandbox answering each room read late; then the approver answers every
question at once. Side by side in one run:

* ``shared``: the provider's ``ImkitApprovalTrigger.run()`` (one reader per room, the read
  budget, the readers' own thread pool);
* ``per-wait``: the design before it (each wait reads its room itself, one
  ``asyncio.to_thread`` call per read on asyncio's default pool, each with its own hook).

Each case runs in a fresh child process (its threads and RSS are its own); the sandbox runs in
another (``--rate-limit 0``: the reads asked for are counted, not refused)::

    python -m benchmarks.approvals     # waits 100/500/1000, rooms 10/one per wait, latency 0/0.2 s
    python -m benchmarks.approvals --waits 1000 --rooms 10 --latency 0.2 --design shared

Reported per case: reads/min in the steady state before the replies (the sandbox's count),
decision latency after the reply (p50/p95/max, and how many were decided), event-loop lag
(a 10 ms ticker: p99/max), the process's threads (max) and RSS (max).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

API_KEY = "benchmark-platform-key-0123456789"
DESIGNS = ("shared", "per-wait")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextlib.contextmanager
def sandbox_process(latency: float) -> Any:
    """The sandbox in its own process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_imkit.sandbox", "--port", "0", "--rate-limit", "0",
         "--auto-create", "--api-key", API_KEY, "--read-latency", str(latency)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split("listening on ", 1)[1].split()[0]
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


#: Counts the sandbox's room reads, in a process of its own: parsing the sandbox's request log
#: here would hold this process's GIL, and show up as the event loop's lag.
COUNT_READS = (
    "import sys, requests\n"
    "counts = requests.get(sys.argv[1] + '/_sandbox/requests', headers={'IM-API-KEY': sys.argv[2]},"
    " timeout=60).json()['result']['counts']\n"
    "print(sum(n for key, n in counts.items() if key.endswith('/messages/v3')))\n"
)


#: Posts alice's "Approve" in every room given, and prints when each was posted.
ANSWER_ALL = (
    "import json, sys, time\n"
    "from airflow_provider_imkit.client import ImkitClient\n"
    "client, posted = ImkitClient(sys.argv[1], sys.argv[2]), {}\n"
    "for room in sys.argv[3:]:\n"
    "    posted[room] = time.time()\n"
    "    client.send_message(room=room, sender='alice', message='Approve')\n"
    "print(json.dumps(posted))\n"
)


async def room_reads(url: str) -> int:
    """How many room reads the sandbox has answered."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", COUNT_READS, url, API_KEY, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return int(out)


async def per_wait(question: dict[str, Any], poll: float, conn_id: str) -> Any:
    """The approval trigger's loop before shared readers: its own hook, one to_thread per read."""
    from airflow_provider_imkit.decisions import ApprovalWait, Outcome, Question
    from airflow_provider_imkit.hooks.imkit import ImkitHook

    wait = ApprovalWait(Question.from_json(question), poll)
    hook = ImkitHook(conn_id)
    try:
        while True:
            step = await asyncio.to_thread(lambda: wait.poll(hook.client))
            if isinstance(step, Outcome):
                return step
            await asyncio.sleep(step)
    finally:
        hook.close()


async def shared(question: dict[str, Any], poll: float, conn_id: str) -> Any:
    from airflow_provider_imkit.triggers.imkit import ImkitApprovalTrigger

    async for event in ImkitApprovalTrigger(
        question=question, poll_interval=poll, imkit_conn_id=conn_id
    ).run():
        return event.payload
    return None


def one_case(design: str, waits: int, rooms: int, latency: float, poll: float, url: str) -> dict[str, Any]:
    """Run one case in this process (a child of the main run)."""
    import psutil

    from airflow_provider_imkit.client import ImkitClient
    from airflow_provider_imkit.decisions import Question

    os.environ["AIRFLOW_CONN_IMKIT_BENCH"] = json.dumps(
        {"conn_type": "imkit", "host": url, "password": API_KEY}
    )
    names = [f"room-{i}" for i in range(rooms)]
    client = ImkitClient(url, API_KEY)
    questions = []
    for n in range(waits):
        room = names[n % rooms]
        asked = client.send_message(room=room, sender="bot", message=f"Publish {n}?", mentions=["alice"])
        question = Question(
            room=room, sender="bot", approvers=("alice",), options=("Approve", "Reject"),
            message_id=asked["_id"], asked_at_ms=asked["createdAtMS"],
        )  # fmt: skip
        questions.append(question.to_json())
    # What a triggerer has loaded before it runs a trigger: Airflow, its configuration, the hook.
    from airflow_provider_imkit.hooks.imkit import ImkitHook
    from airflow_provider_imkit.triggers.imkit import approval_reads_per_minute

    approval_reads_per_minute()
    ImkitHook("imkit_bench").get_conn().close()
    process = psutil.Process()
    run = shared if design == "shared" else per_wait
    lags: list[float] = []
    threads: list[int] = []
    rss: list[int] = []
    decided: dict[int, float] = {}
    replied: dict[str, float] = {}

    async def ticker(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(max(0.0, loop.time() - before - 0.01))
            if len(lags) % 100 == 0:
                threads.append(threading.active_count())
                rss.append(process.memory_info().rss)

    async def waiter(n: int) -> None:
        await run(questions[n], poll, "imkit_bench")
        decided[n] = time.time()

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        tick = asyncio.ensure_future(ticker(stop))
        tasks = [asyncio.ensure_future(waiter(n)) for n in range(waits)]
        warmup, window = 2 * poll, 3 * poll
        await asyncio.sleep(warmup)
        first = await room_reads(url)
        await asyncio.sleep(window)
        reads_per_minute = (await room_reads(url) - first) / window * 60
        # The approver answers every question at once: one reply a room, from another process.
        replier = await asyncio.create_subprocess_exec(
            sys.executable, "-c", ANSWER_ALL, url, API_KEY, *names, stdout=asyncio.subprocess.PIPE
        )
        # Long enough for the budget to reach every room again (rooms / 300 per minute), twice.
        limit = time.time() + max(6 * poll, 2 * rooms / 300 * 60) + 30
        while len(decided) < waits and time.time() < limit:
            await asyncio.sleep(0.5)
        replied.update(json.loads((await replier.communicate())[0]))
        stop.set()
        await tick
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        latencies = [decided[n] - replied[questions[n]["room"]] for n in decided]
        return {
            "reads_per_minute": round(reads_per_minute),
            "asked_per_minute": round(min(waits, rooms if design == "shared" else waits) * 60 / poll),
            "decided": len(decided),
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "max": max(latencies, default=float("nan")),
            "lag_p99_ms": percentile(lags, 99) * 1000,
            "lag_max_ms": max(lags, default=0.0) * 1000,
            "threads": max(threads, default=threading.active_count()),
            "rss_mb": max(rss, default=process.memory_info().rss) / 2**20,
        }

    return asyncio.run(main())


def run_case(design: str, waits: int, rooms: int, latency: float, poll: float) -> dict[str, Any]:
    import tempfile

    with sandbox_process(latency) as url, tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.approvals", "--one", design, str(waits), str(rooms),
             str(latency), str(poll), url],
            capture_output=True, text=True, check=False, env=env,
        )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"case {design} {waits}/{rooms}/{latency} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--waits", default="100,500,1000", help="comma-separated wait counts")
    parser.add_argument("--rooms", default="10,per-wait", help="comma-separated room counts, or per-wait")
    parser.add_argument("--latency", default="0,0.2", help="comma-separated read latencies (s)")
    parser.add_argument("--design", default=",".join(DESIGNS), help="shared, per-wait or both")
    parser.add_argument("--poll", type=float, default=10.0, help="poll interval (s), default 10")
    parser.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        design, waits, rooms, latency, poll, url = args.one
        with contextlib.redirect_stdout(sys.stderr):  # Airflow's log lines stay out of the result
            result = one_case(design, int(waits), int(rooms), float(latency), float(poll), url)
        print(json.dumps(result))
        return 0
    print(f"approval waits, poll {args.poll:g} s; reads/min measured over 3 intervals before the replies")
    print(
        "| design | waits | rooms | read latency | reads/min (asked) | decided "
        "| decision p50 / p95 / max (s) | loop lag p99 / max (ms) | threads | RSS (MiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for waits in (int(w) for w in args.waits.split(",")):
        for rooms_text in args.rooms.split(","):
            rooms = waits if rooms_text == "per-wait" else int(rooms_text)
            for latency in (float(x) for x in args.latency.split(",")):
                for design in args.design.split(","):
                    r = run_case(design, waits, rooms, latency, args.poll)
                    print(
                        f"| {design} | {waits} | {rooms} | {latency:g} s | {r['reads_per_minute']:,} "
                        f"({r['asked_per_minute']:,}) | {r['decided']}/{waits} | {r['p50']:.1f} / "
                        f"{r['p95']:.1f} / {r['max']:.1f} | {r['lag_p99_ms']:.1f} / {r['lag_max_ms']:.0f} "
                        f"| {r['threads']} | {r['rss_mb']:.0f} |",
                        flush=True,
                    )
    print(f"(Python {sys.version.split()[0]}, {os.cpu_count()} cores; one run per case)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
