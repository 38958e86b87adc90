"""The one path every request takes: auth -> record -> fault -> rate limit -> route.

Beside it: the inbox page (``GET /``, no key) and the control API under ``/_sandbox/``
(same key as the API, never recorded, never faulted or rate limited).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from airflow_provider_imkit.sandbox.answers import Answer, fail, ok
from airflow_provider_imkit.sandbox.faults import Fault
from airflow_provider_imkit.sandbox.inbox import render_inbox

if TYPE_CHECKING:
    from airflow_provider_imkit.sandbox.app import SandboxApp
    from airflow_provider_imkit.sandbox.faults import Exchange

CONTROL_PREFIX = "/_sandbox/"
INBOX_PATHS = ("/", "/index.html")


def serve(app: SandboxApp, exchange: Exchange) -> None:
    """Answer one request."""
    method = exchange.method
    path = exchange.target.partition("?")[0]
    if method == "GET" and path in INBOX_PATHS:
        exchange.send(200, render_inbox(app).encode("utf-8"), "text/html; charset=utf-8")
        return
    # 1. auth
    key = exchange.header("IM-API-KEY")
    record = exchange.record = app.authenticate(key)
    record.method, record.path = method, path
    record.user_agent = exchange.header("User-Agent")
    denial = app.auth_failure(record)
    if path.startswith(CONTROL_PREFIX):
        exchange.reply(denial or control(app, method, path[len(CONTROL_PREFIX) :], exchange.body))
        return
    # 2. record (a denied request too)
    app.record(record)
    if denial is not None:
        exchange.reply(denial)
        return
    # 3. fault: a scripted answer replaces everything below (and is not rate limited)
    fault = app.next_fault(path)
    if fault is not None:
        record.fault = fault.kind
        fault.apply(exchange)
        return
    # 4. rate limit, per key
    limited = app.rate_limited(key or "")
    if limited is not None:
        exchange.reply(limited)
        return
    # 5. route
    answer = exchange.process()
    result = answer.body.get("result") if isinstance(answer.body, dict) else None
    if answer.status == 200 and isinstance(result, dict) and isinstance(result.get("_id"), str):
        record.result_id = result["_id"]
    exchange.reply(answer)


def control(app: SandboxApp, method: str, action: str, body: bytes) -> Answer:
    """The inspection and fault-injection API under ``/_sandbox/``."""
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError:
        return fail(400, "INVALID_REQUEST", "Body is not valid JSON")
    match (method, action):
        case ("GET", "rooms"):
            return ok(app.received())
        case ("GET", "requests"):
            return ok({"counts": app.request_counts(), "requests": app.request_log()})
        case ("POST", "faults"):
            if not isinstance(data, dict):
                return fail(400, "INVALID_REQUEST", "Bad fault: the body must be a JSON object")
            try:
                times = int(data.pop("times", 1))
                path = str(data.pop("path"))
                app.add_fault(path, Fault.from_json(data), times)
            except (KeyError, TypeError, ValueError) as exc:
                return fail(400, "INVALID_REQUEST", f"Bad fault: {exc}")
            return ok({"path": path, "times": times})
        case ("POST", "reset"):
            app.reset()
            return ok({})
        case ("POST", "flush"):
            app.flush_batches()
            return ok({})
    return fail(404, "NOT_FOUND", f"No sandbox control {method} /_sandbox/{action}")
