"""The one path every request takes: auth -> record -> fault -> rate limit -> route.

Beside it: the inbox page (``GET /``, no key) with its reply box (``POST /inbox/reply``,
form-encoded, no key: the sandbox listens on loopback) and the control API under ``/_sandbox/``
(same key as the API, never recorded, never faulted or rate limited).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from airflow_provider_imkit.sandbox.answers import Answer, ApiFailure, fail, ok
from airflow_provider_imkit.sandbox.faults import Fault
from airflow_provider_imkit.sandbox.inbox import render_inbox
from airflow_provider_imkit.sandbox.replies import REPLY_PATH, AutoReply, reply_from_form

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
        query = {k: v[-1] for k, v in parse_qs(exchange.target.partition("?")[2]).items()}
        page = render_inbox(app, room=query.get("room"), user=query.get("user"))
        exchange.send(200, page.encode("utf-8"), "text/html; charset=utf-8")
        return
    if method == "POST" and path == REPLY_PATH:
        reply_in_page(app, exchange)
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
    # 5. route (a room read answered late, when the sandbox plays a loaded IMKIT)
    if app.read_latency and method == "GET" and path.endswith("/messages/v3"):
        time.sleep(app.read_latency)
    answer = exchange.process()
    result = answer.body.get("result") if isinstance(answer.body, dict) else None
    if answer.status == 200 and isinstance(result, dict) and isinstance(result.get("_id"), str):
        record.result_id = result["_id"]
    exchange.reply(answer)


def reply_in_page(app: SandboxApp, exchange: Exchange) -> None:
    """The inbox page's reply box: store the reply, then show the page again (303). A post
    from another site's page (its ``Origin`` is not this server) is refused."""
    origin, host = exchange.header("Origin"), exchange.header("Host")
    if origin and origin != "null" and urlsplit(origin).netloc != host:
        exchange.reply(fail(403, "FORBIDDEN", "The reply box only takes posts from the inbox page itself"))
        return
    try:
        with app.lock:
            stored = reply_from_form(app, exchange.body)
    except ApiFailure as failure:
        exchange.reply(failure.answer)
        return
    room, user = stored["room"], stored["sender"]
    where = f"/?{urlencode({'room': room, 'user': user})}#{quote('room-' + room)}"
    exchange.send(303, b"", "text/plain", {"Location": where})


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
        case ("POST", "auto-replies"):
            try:
                reply = AutoReply.from_json(data)
            except ValueError as exc:
                return fail(400, "INVALID_REQUEST", f"Bad auto-reply: {exc}")
            app.add_auto_reply(reply)
            return ok({"room": reply.room, "user": reply.user})
    return fail(404, "NOT_FOUND", f"No sandbox control {method} /_sandbox/{action}")
