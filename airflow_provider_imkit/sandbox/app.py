"""The sandbox's IMKIT Platform API: endpoints and the per-request state, free of socket code.

An independent reading of the public API docs (shared/imkit-api.md); it shares no code
with the hook, so that each can catch the other's mistakes. The order in which a request
meets auth, faults, the rate limit and these endpoints is in :mod:`.pipeline`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import threading
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from airflow_provider_imkit.sandbox.answers import Answer, ApiFailure, RequestRecord, fail, ok
from airflow_provider_imkit.sandbox.store import Store

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_imkit.sandbox.faults import Fault
    from airflow_provider_imkit.sandbox.replies import AutoReply

DEFAULT_RATE_LIMIT = 1000  # requests per minute per API key, as documented
DEFAULT_MAX_BODY = 1024 * 1024
MAX_HISTORY_LIMIT = 100
#: ``timeRangeField`` values of the history endpoint, and the message field each reads.
TIME_RANGE_FIELDS = {"updatedAt": "updatedAtMS", "createdAt": "createdAtMS", "messageTime": "messageTimeMS"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SandboxApp(Store):
    """
    One sandbox's state (users, rooms, messages, requests seen, faults, rate-limit windows)
    and its endpoints.

    :param api_keys: keys accepted in the ``IM-API-KEY`` header.
    :param rate_limit: requests per minute per key (None: no limit).
    :param retry_after_header: also send ``Retry-After`` with a 429 (the docs show only
        the body field; proxies add the header).
    :param auto_create: create unknown rooms and users on first use instead of 404.
    :param batch_delay: seconds before a queued batch is delivered.
    :param max_body: largest request body accepted, in bytes (413 beyond).
    :param read_latency: seconds each room read (``GET /rooms/{room}/messages/v3``) waits
        before it is answered, as a loaded IMKIT answers (the benchmarks use it); default 0.
    :param clock: a ``time.time``-like function (tests inject one).
    """

    def __init__(
        self,
        api_keys: list[str],
        *,
        rate_limit: int | None = DEFAULT_RATE_LIMIT,
        retry_after_header: bool = False,
        auto_create: bool = False,
        batch_delay: float = 0.05,
        max_body: int = DEFAULT_MAX_BODY,
        read_latency: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_keys or any(not k for k in api_keys):
            raise ValueError("the sandbox needs at least one non-empty API key")
        super().__init__(auto_create=auto_create, batch_delay=batch_delay, clock=clock)
        self.api_keys = list(api_keys)
        self.rate_limit = rate_limit
        self.retry_after_header = retry_after_header
        self.max_body = max_body
        if not isinstance(read_latency, int | float) or read_latency < 0:
            raise ValueError("read_latency must be a number of seconds >= 0")
        self.read_latency = float(read_latency)
        self.records: list[RequestRecord] = []
        self.faults: dict[str, deque[Fault]] = {}
        self._windows: dict[str, tuple[int, int]] = {}
        self.auto_replies: list[AutoReply] = []
        #: Work a ``store_late`` fault left for later: [reads left, action], and timers.
        self._after_reads: list[list[Any]] = []
        self._timers: list[threading.Timer] = []
        #: Set by ImkitSandbox.release(): ``hold`` faults answer then.
        self.released = threading.Event()

    # -- the pipeline's steps -------------------------------------------------------------------

    def authenticate(self, key: str | None) -> RequestRecord:
        """A record of a request that carried ``key`` in ``IM-API-KEY`` (the key is not kept)."""
        return RequestRecord("", "", key_present=bool(key), key_valid=bool(key) and key in self.api_keys)

    @staticmethod
    def auth_failure(record: RequestRecord) -> Answer | None:
        """The 401 answer for a request without a valid key, else None."""
        if not record.key_present:
            return fail(401, "MISSING_API_KEY", "IM-API-KEY header is required")
        if not record.key_valid:
            return fail(401, "INVALID_API_KEY", "The provided API key is invalid")
        return None

    def record(self, record: RequestRecord) -> None:
        with self.lock:
            self.records.append(record)

    def add_fault(self, path: str, fault: Fault, times: int = 1) -> None:
        """Script the next ``times`` responses to ``path`` (``*`` matches every API path)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            self.faults.setdefault(path, deque()).extend([fault] * times)

    def next_fault(self, path: str) -> Fault | None:
        with self.lock:
            for key in (path, "*"):
                queue = self.faults.get(key)
                if queue:
                    return queue.popleft()
            return None

    def later(self, action: Callable[[], Any], *, delay: float, reads: int) -> None:
        """Run ``action`` after ``delay`` seconds (a timer thread), or, when ``reads`` > 0,
        just before the ``reads``-th read of a room's messages from now."""
        with self.lock:
            if reads > 0:
                self._after_reads.append([reads, action])
                return
            timer = threading.Timer(delay, action)
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def cancel_later(self) -> None:
        """Drop what :meth:`later` still holds (the sandbox stops or is reset)."""
        with self.lock:
            timers, self._timers, self._after_reads = self._timers, [], []
        for timer in timers:
            timer.cancel()

    def _before_room_read(self) -> None:
        with self.lock:
            due = [entry for entry in self._after_reads if entry[0] <= 1]
            self._after_reads = [entry for entry in self._after_reads if entry[0] > 1]
            for entry in self._after_reads:
                entry[0] -= 1
        for _, action in due:
            action()

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def rate_limited(self, key: str) -> Answer | None:
        """Count a request against ``key``'s minute; the 429 answer when over the limit."""
        if self.rate_limit is None:
            return None
        now = self.clock()
        minute = int(now // 60)
        with self.lock:
            window, count = self._windows.get(key, (minute, 0))
            if window != minute:
                window, count = minute, 0
            if count >= self.rate_limit:
                wait = max(1, math.ceil((minute + 1) * 60 - now))
                body = {
                    "error": "RATE_LIMIT_EXCEEDED",
                    "message": "Too many requests, please try again later",
                    "retryAfter": wait,
                }
                return Answer(429, body, {"Retry-After": str(wait)} if self.retry_after_header else {})
            self._windows[key] = (window, count + 1)
        return None

    # -- inspection -----------------------------------------------------------------------------

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(Counter(f"{r.method} {r.path}" for r in self.records))

    def request_log(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.to_json() for r in self.records]

    def flush_batches(self) -> None:
        """Deliver every queued batch now."""
        self.deliver_batches(force=True)

    def reset(self) -> None:
        """Forget messages, requests, faults and rate-limit windows; keep users, rooms and keys."""
        with self.lock:
            self.clear_messages()
            self.records.clear()
            self.faults.clear()
            self.cancel_later()
            self._windows.clear()
            self.auto_replies.clear()

    # -- routing --------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: bytes) -> Answer:
        """Process one authenticated API request and return the answer."""
        path, _, query = raw_path.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        if len(body) > self.max_body:
            return fail(413, "INVALID_REQUEST", f"Request body exceeds {self.max_body} bytes")
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, ValueError):
            return fail(400, "INVALID_REQUEST", "Body is not valid UTF-8 JSON")
        if method == "POST" and not isinstance(data, dict):
            return fail(400, "INVALID_REQUEST", "Body must be a JSON object")
        try:
            with self.lock:
                self.deliver_batches()
                return self._route(method, path, params, data)
        except ApiFailure as failure:
            return failure.answer

    def _route(self, method: str, path: str, params: dict[str, str], data: Any) -> Answer:
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        match (method, segments):
            case ("POST", ["messages"]):
                return ok(self.public(self.send_message(data)))
            case ("POST", ["messages", "batch"]):
                return self._batch(data)
            case ("POST", ["rooms", room, "message"]):
                return self._room_message(room, data)
            case ("POST", ["admin", "clients"]):
                return self._upsert_client(data)
            case ("GET", ["admin", "clients"]):
                return self._list_clients(params)
            case ("GET", ["admin", "connection-count"]):
                return self._connection_count()
            case ("POST", ["rooms"]):
                return self._create_room(data)
            case ("GET", ["rooms", room]):
                return ok(copy.deepcopy(self.room(room)))
            case ("GET", ["rooms", room, "messages", "v3"]):
                return self._room_history(room, params)
        return fail(404, "NOT_FOUND", f"No endpoint {method} {path}")

    # -- endpoints ------------------------------------------------------------------------------

    def send_message(self, data: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a ``POST /messages`` body; returns the stored message."""
        for name in ("message", "messageType", "room", "sender"):
            if data.get(name) in (None, ""):
                raise ApiFailure(400, "MISSING_PARAMETER", f"Missing required parameter: {name}")
        for name in ("messageType", "room", "sender"):
            if not isinstance(data[name], str):
                raise ApiFailure(400, "INVALID_REQUEST", f"{name} must be a string")
        for name in ("push", "skipTotalBadge"):
            if name in data and not isinstance(data[name], bool):
                raise ApiFailure(400, "INVALID_REQUEST", f"{name} must be a boolean")
        mentions = data.get("mentions", [])
        if not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
            raise ApiFailure(400, "INVALID_REQUEST", "mentions must be an array of user ids")
        with self.lock:
            self.room(data["room"])
            self.user(data["sender"])
            stored = self.store_message(
                room=data["room"],
                sender=data["sender"],
                message=data["message"],
                message_type=data["messageType"],
                push=data.get("push", True),
                skip_total_badge=data.get("skipTotalBadge", False),
                mentions=mentions,
            )
            self._auto_reply(stored)
            return stored

    def add_auto_reply(self, reply: AutoReply) -> None:
        """Queue a scripted reply (see :class:`AutoReply`); each answers one message."""
        with self.lock:
            self.auto_replies.append(reply)

    def _auto_reply(self, message: dict[str, Any] | None, read_room: str | None = None) -> None:
        """Every queued reply that answers ``message`` (or, with ``read_room``, waits for that
        room's read) does, in order, and is used up."""

        def due(reply: AutoReply) -> bool:
            return reply.answers(message) if message else reply.on_read and reply.room == read_room

        answering = [reply for reply in self.auto_replies if due(reply)]
        self.auto_replies = [reply for reply in self.auto_replies if not due(reply)]
        for reply in answering:
            self.user(reply.user)
            self.store_message(
                room=reply.room,
                sender=reply.user,
                message=reply.text,
                message_type="text",
                push=True,
                skip_total_badge=False,
                mentions=[],
            )

    def _batch(self, data: dict[str, Any]) -> Answer:
        for name in ("message", "messageType", "paras"):
            if data.get(name) in (None, "", []):
                raise ApiFailure(400, "MISSING_PARAMETER", f"Missing required parameter: {name}")
        paras = data["paras"]
        if not isinstance(paras, list) or not all(
            isinstance(p, dict) and (p.get("room") or p.get("receiver")) for p in paras
        ):
            raise ApiFailure(400, "INVALID_REQUEST", "paras must be a list of {room} or {receiver} objects")
        if data.get("sender"):
            self.user(data["sender"])
        batch_id = self.queue_batch(data)
        # Delivered when due, stamped then, even if no request comes in between (any request
        # also delivers what is due first, so tests see a deterministic order).
        self.later(self.deliver_batches, delay=self.batch_delay, reads=0)
        return ok({"batchID": batch_id, "count": len(paras)})

    def _room_message(self, room: str, data: dict[str, Any]) -> Answer:
        if data.get("messageType") != "recall":
            raise ApiFailure(400, "INVALID_REQUEST", "Only messageType 'recall' is supported here")
        message_id = data.get("_id")
        if not message_id:
            raise ApiFailure(400, "MISSING_PARAMETER", "Missing required parameter: _id")
        message = self.recall(room, message_id)
        return ok({**self.public(message), "sender": self.sender_object(message["sender"])})

    def _upsert_client(self, data: dict[str, Any]) -> Answer:
        user_id = data.get("_id")
        if not user_id or not isinstance(user_id, str):
            raise ApiFailure(400, "MISSING_PARAMETER", "Missing required parameter: _id")
        user = self.add_user(user_id, data.get("nickname"), data.get("avatarUrl"))
        if data.get("issueAccessToken"):
            user["token"] = f"sandbox-user-token-{os.urandom(8).hex()}"
        return ok(user)

    def _list_clients(self, params: dict[str, str]) -> Answer:
        limit = _int_param(params, "limit", 50)
        skip = _int_param(params, "skip", 0)
        users = list(self.users.values())
        return ok({"totalCount": len(users), "data": copy.deepcopy(users[skip : skip + limit])})

    def _connection_count(self) -> Answer:
        return ok({"count": 0})

    def _create_room(self, data: dict[str, Any]) -> Answer:
        if not data.get("name") and not data.get("_id"):
            raise ApiFailure(400, "MISSING_PARAMETER", "Missing required parameter: name")
        members = data.get("members", [])
        if not isinstance(members, list):
            raise ApiFailure(400, "INVALID_REQUEST", "members must be an array")
        return ok(self.add_room(data.get("_id"), data.get("name"), members, data.get("roomType", "group")))

    def _room_history(self, room: str, params: dict[str, str]) -> Answer:
        self._before_room_read()
        limit = min(_int_param(params, "limit", 20), MAX_HISTORY_LIMIT)
        field_name = params.get("timeRangeField", "updatedAt")
        if field_name not in TIME_RANGE_FIELDS:
            raise ApiFailure(
                400, "INVALID_REQUEST", f"timeRangeField must be one of {', '.join(TIME_RANGE_FIELDS)}"
            )
        after_time = params.get("afterTime")
        result = self.history(
            room,
            limit=limit,
            before=params.get("beforeMessage"),
            after=params.get("afterMessage"),
            after_ms=None if after_time is None else parse_time(after_time),
            time_field=TIME_RANGE_FIELDS[field_name],
        )
        with self.lock:
            self._auto_reply(None, read_room=room)  # after the read: the next read sees it
        return ok(result)


def parse_time(text: str) -> int:
    """``afterTime``: digits are ms since the epoch; else ISO-8601 (UTC when no offset given)."""
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ApiFailure(
            400, "INVALID_REQUEST", "afterTime must be an ISO-8601 time or milliseconds since the epoch"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    try:
        value = int(params.get(name, default))
    except ValueError:
        raise ApiFailure(400, "INVALID_REQUEST", f"{name} must be an integer") from None
    return max(0, value)
