"""Command line: ``imkit-sandbox`` / ``python -m airflow_provider_imkit.sandbox``."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from typing import Any

from airflow_provider_imkit.sandbox.app import DEFAULT_RATE_LIMIT
from airflow_provider_imkit.sandbox.server import DEFAULT_API_KEY, ImkitSandbox

#: Exit status when the server cannot listen (as argparse uses for bad arguments).
EXIT_CANNOT_LISTEN = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imkit-sandbox",
        description="Run a local IMKIT-compatible server (Platform API subset, inbox page at /).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8099, help="port (default 8099; 0 picks a free one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="API key clients must send")
    parser.add_argument("--room", action="append", default=[], help="create a room (repeatable)")
    parser.add_argument("--user", action="append", default=[], help="create a user (repeatable)")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=DEFAULT_RATE_LIMIT,
        help=f"requests per minute per key (default {DEFAULT_RATE_LIMIT}; 0 turns it off)",
    )
    parser.add_argument("--retry-after-header", action="store_true", help="send Retry-After with 429s")
    parser.add_argument(
        "--read-latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="answer each room read (GET /rooms/{room}/messages/v3) this late, as a loaded IMKIT",
    )
    parser.add_argument(
        "--auto-create", action="store_true", help="create unknown rooms and users on first use"
    )
    return parser


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"imkit-sandbox: port {port} on {host} is already in use; "
            "pick another with --port N, or --port 0 for a free one"
        )
    return f"imkit-sandbox: cannot listen on {host} port {port}: {exc.strerror or exc}"


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sandbox = ImkitSandbox(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        rooms=args.room,
        users=args.user,
        rate_limit=args.rate_limit or None,
        retry_after_header=args.retry_after_header,
        auto_create=args.auto_create,
        read_latency=args.read_latency,
    )
    try:
        sandbox.start()
    except OSError as exc:
        print(_cannot_listen(args.host, args.port, exc), file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    # Ctrl-C and SIGTERM stop it (even when started with SIGINT ignored, as `cmd &` does).
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        print(f"IMKIT sandbox listening on {sandbox.url}  (inbox: {sandbox.url}/)")
        print("Point Airflow at it with:")
        print(f"  export AIRFLOW_CONN_IMKIT_DEFAULT='{sandbox.connection_json()}'")
        sys.stdout.flush()
        threading.Event().wait()  # until a signal interrupts
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut stop() short
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
