"""The sandbox's IMKIT Platform API: state and endpoints, free of any socket code.

An independent reading of the public API docs (shared/imkit-api.md); it shares no code
with the hook, so that each can catch the other's mistakes.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_imkit.sandbox.faults import Fault

APP_ID = "sandbox"
DEFAULT_RATE_LIMIT = 1000  # requests per minute per API key, as documented
DEFAULT_MAX_BODY = 1024 * 1024


def new_id() -> str:
    """An id shaped like IMKIT's (MongoDB ObjectId): 24 hex characters."""
    return f"{int(time.time()):08x}{os.urandom(8).hex()}"


@dataclass
class Answer:
    """What an endpoint answers: a status and a JSON body (plus headers)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


def ok(result: Any) -> Answer:
    return Answer(200, {"RC": 0, "RM": "OK", "result": result})


def fail(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"RC": status, "RM": message, "error": {"code": code, "message": message}})


class ApiFailure(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body)
        self.answer = answer


@dataclass
class RequestRecord:
    """One request as the sandbox saw it. The API key itself is never kept."""

    method: str
    path: str
    key_present: bool
    key_valid: bool
    status: int = 0
    fault: str | None = None
    #: False when the connection was gone before the whole answer was written.
    completed: bool = True

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SandboxApp:
    """
    The state of one sandbox (users, rooms, messages, faults) and its endpoints.

    :param api_keys: keys accepted in the ``IM-API-KEY`` header.
    :param rate_limit: requests per minute per key (None: no limit).
    :param retry_after_header: also send ``Retry-After`` with a 429 (the docs show only
        the body field; proxies add the header).
    :param auto_create: create unknown rooms and users on first use instead of 404.
    :param batch_delay: seconds before a queued batch is delivered.
    :param max_body: largest request body accepted, in bytes (413 beyond).
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_keys or any(not k for k in api_keys):
            raise ValueError("the sandbox needs at least one non-empty API key")
        self.api_keys = list(api_keys)
        self.rate_limit = rate_limit
        self.retry_after_header = retry_after_header
        self.auto_create = auto_create
        self.batch_delay = batch_delay
        self.max_body = max_body
        self.clock = clock
        self.lock = threading.RLock()
        self.users: dict[str, dict[str, Any]] = {}
        self.rooms: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.records: list[RequestRecord] = []
        self.faults: dict[str, deque[Fault]] = {}
        self.batches: list[tuple[float, dict[str, Any]]] = []
        self._windows: dict[str, tuple[int, int]] = {}

    # -- setup and inspection (Python API) ----------------------------------------------------

    def add_user(
        self, user_id: str, nickname: str | None = None, avatar_url: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            now = self._ms()
            user = self.users.get(user_id) or {"_id": user_id, "createdAtMS": now}
            user.update(
                {
                    "nickname": nickname or user.get("nickname") or user_id,
                    "avatarUrl": avatar_url or user.get("avatarUrl", ""),
                    "updatedAtMS": now,
                }
            )
            self.users[user_id] = user
            return copy.deepcopy(user)

    def add_room(
        self,
        room_id: str | None = None,
        name: str | None = None,
        members: list[str] | None = None,
        room_type: str = "group",
    ) -> dict[str, Any]:
        with self.lock:
            room_id = room_id or new_id()
            now = self._ms()
            room = {
                "_id": room_id,
                "name": name or room_id,
                "roomType": room_type,
                "members": list(members or []),
                "appID": APP_ID,
                "createdTimeMS": now,
                "updatedAtMS": now,
            }
            self.rooms[room_id] = room
            self.messages.setdefault(room_id, [])
            return copy.deepcopy(room)

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

    def received(self, room: str | None = None) -> dict[str, list[dict[str, Any]]] | list[dict[str, Any]]:
        """Messages per room (full objects, with ``push``/``mentions``/``skipTotalBadge`` as sent)."""
        with self.lock:
            self._deliver_due_batches()
            if room is not None:
                return copy.deepcopy(self.messages.get(room, []))
            return copy.deepcopy(self.messages)

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(Counter(f"{r.method} {r.path}" for r in self.records))

    def reset(self) -> None:
        """Forget messages, requests, faults and rate-limit windows; keep users, rooms and keys."""
        with self.lock:
            for room in self.messages:
                self.messages[room] = []
            self.records.clear()
            self.faults.clear()
            self.batches.clear()
            self._windows.clear()

    def flush_batches(self) -> None:
        """Deliver every queued batch now."""
        with self.lock:
            self._deliver_due_batches(force=True)

    # -- request entry point ----------------------------------------------------------------

    def authenticate(self, headers: Any) -> RequestRecord:
        key = headers.get("IM-API-KEY")
        return RequestRecord("", "", key_present=bool(key), key_valid=bool(key) and key in self.api_keys)

    def auth_failure(self, record: RequestRecord) -> Answer | None:
        """The 401 answer for a request without a valid key, else None."""
        if not record.key_present:
            return fail(401, "MISSING_API_KEY", "IM-API-KEY header is required")
        if not record.key_valid:
            return fail(401, "INVALID_API_KEY", "The provided API key is invalid")
        return None

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
                self._deliver_due_batches()
                return self._route(method, path, params, data)
        except ApiFailure as failure:
            return failure.answer

    def _route(self, method: str, path: str, params: dict[str, str], data: Any) -> Answer:
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        match (method, segments):
            case ("POST", ["messages"]):
                return self._send(data)
            case ("POST", ["messages", "batch"]):
                return self._batch(data)
            case ("POST", ["rooms", room, "message"]):
                return self._room_message(room, data)
            case ("POST", ["admin", "clients"]):
                return self._upsert_client(data)
            case ("GET", ["admin", "clients"]):
                return self._list_clients(params)
            case ("GET", ["admin", "connection-count"]):
                return ok({"count": 0})
            case ("POST", ["rooms"]):
                return self._create_room(data)
            case ("GET", ["rooms", room]):
                return ok(copy.deepcopy(self._room(room)))
            case ("GET", ["rooms", room, "messages", "v3"]):
                return self._room_history(room, params)
        return fail(404, "NOT_FOUND", f"No endpoint {method} {path}")

    # -- endpoints ---------------------------------------------------------------------------

    def _send(self, data: dict[str, Any]) -> Answer:
        for name in ("message", "messageType", "room", "sender"):
            if data.get(name) in (None, ""):
                raise ApiFailure(fail(400, "MISSING_PARAMETER", f"Missing required parameter: {name}"))
        for name in ("messageType", "room", "sender"):
            if not isinstance(data[name], str):
                raise ApiFailure(fail(400, "INVALID_REQUEST", f"{name} must be a string"))
        for name in ("push", "skipTotalBadge"):
            if name in data and not isinstance(data[name], bool):
                raise ApiFailure(fail(400, "INVALID_REQUEST", f"{name} must be a boolean"))
        mentions = data.get("mentions", [])
        if not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
            raise ApiFailure(fail(400, "INVALID_REQUEST", "mentions must be an array of user ids"))
        self._room(data["room"])
        self._user(data["sender"])
        message = self._store(
            room=data["room"],
            sender=data["sender"],
            message=data["message"],
            message_type=data["messageType"],
            push=data.get("push", True),
            skip_total_badge=data.get("skipTotalBadge", False),
            mentions=mentions,
        )
        return ok(self._public(message))

    def _batch(self, data: dict[str, Any]) -> Answer:
        for name in ("message", "messageType", "paras"):
            if data.get(name) in (None, "", []):
                raise ApiFailure(fail(400, "MISSING_PARAMETER", f"Missing required parameter: {name}"))
        paras = data["paras"]
        if not isinstance(paras, list) or not all(
            isinstance(p, dict) and (p.get("room") or p.get("receiver")) for p in paras
        ):
            raise ApiFailure(
                fail(400, "INVALID_REQUEST", "paras must be a list of {room} or {receiver} objects")
            )
        if data.get("sender"):
            self._user(data["sender"])
        batch_id = new_id()
        self.batches.append((self.clock() + self.batch_delay, copy.deepcopy(data)))
        return ok({"batchID": batch_id, "count": len(paras)})

    def _room_message(self, room: str, data: dict[str, Any]) -> Answer:
        if data.get("messageType") != "recall":
            raise ApiFailure(fail(400, "INVALID_REQUEST", "Only messageType 'recall' is supported here"))
        message_id = data.get("_id")
        if not message_id:
            raise ApiFailure(fail(400, "MISSING_PARAMETER", "Missing required parameter: _id"))
        self._room(room)
        for message in self.messages.get(room, []):
            if message["_id"] == message_id:
                message.update({"message": "", "messageType": "recall", "updatedAtMS": self._ms()})
                public = self._public(message)
                public["sender"] = copy.deepcopy(
                    self.users.get(message["sender"], {"_id": message["sender"]})
                )
                return ok(public)
        raise ApiFailure(fail(404, "MESSAGE_NOT_FOUND", f"Message {message_id} not found in room {room}"))

    def _upsert_client(self, data: dict[str, Any]) -> Answer:
        user_id = data.get("_id")
        if not user_id or not isinstance(user_id, str):
            raise ApiFailure(fail(400, "MISSING_PARAMETER", "Missing required parameter: _id"))
        user = self.add_user(user_id, data.get("nickname"), data.get("avatarUrl"))
        if data.get("issueAccessToken"):
            user["token"] = f"sandbox-user-token-{os.urandom(8).hex()}"
        return ok(user)

    def _list_clients(self, params: dict[str, str]) -> Answer:
        limit = _int_param(params, "limit", 50)
        skip = _int_param(params, "skip", 0)
        users = list(self.users.values())
        return ok({"totalCount": len(users), "data": copy.deepcopy(users[skip : skip + limit])})

    def _create_room(self, data: dict[str, Any]) -> Answer:
        if not data.get("name") and not data.get("_id"):
            raise ApiFailure(fail(400, "MISSING_PARAMETER", "Missing required parameter: name"))
        members = data.get("members", [])
        if not isinstance(members, list):
            raise ApiFailure(fail(400, "INVALID_REQUEST", "members must be an array"))
        return ok(self.add_room(data.get("_id"), data.get("name"), members, data.get("roomType", "group")))

    def _room_history(self, room: str, params: dict[str, str]) -> Answer:
        self._room(room)
        limit = _int_param(params, "limit", 20)
        messages = [self._public(m) for m in self.messages.get(room, [])][-limit:]
        return ok({"data": list(reversed(messages)), "totalCount": len(self.messages.get(room, []))})

    # -- helpers -----------------------------------------------------------------------------

    def _ms(self) -> int:
        return int(self.clock() * 1000)

    def _room(self, room_id: str) -> dict[str, Any]:
        if room_id not in self.rooms:
            if not self.auto_create:
                raise ApiFailure(fail(404, "ROOM_NOT_FOUND", "The specified room does not exist"))
            self.add_room(room_id)
        return self.rooms[room_id]

    def _user(self, user_id: str) -> dict[str, Any]:
        if user_id not in self.users:
            if not self.auto_create:
                raise ApiFailure(fail(404, "CLIENT_NOT_FOUND", "The specified client does not exist"))
            self.add_user(user_id)
        return self.users[user_id]

    def _store(
        self,
        *,
        room: str,
        sender: str,
        message: Any,
        message_type: str,
        push: bool,
        skip_total_badge: bool,
        mentions: list[str],
    ) -> dict[str, Any]:
        now = self._ms()
        stored = {
            "_id": new_id(),
            "room": room,
            "message": message,
            "messageType": message_type,
            "sender": sender,
            "appID": APP_ID,
            "messageTimeMS": now,
            "updatedAtMS": now,
            "createdAtMS": now,
            "mentions": list(mentions),
            "push": push,
            "skipTotalBadge": skip_total_badge,
        }
        self.messages.setdefault(room, []).append(stored)
        return stored

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        """The message object as the API returns it (delivery flags are sandbox-only)."""
        return {k: copy.deepcopy(v) for k, v in message.items() if k not in ("push", "skipTotalBadge")}

    def _deliver_due_batches(self, force: bool = False) -> None:
        now = self.clock()
        due = [b for b in self.batches if force or b[0] <= now]
        self.batches = [b for b in self.batches if b not in due]
        for _, data in due:
            for para in data["paras"]:
                text = data["message"]
                if isinstance(text, str):
                    for key, value in para.items():
                        if re.fullmatch(r"\$[^$]+\$", key):
                            text = text.replace(key, str(value))
                room = para.get("room")
                if not room:
                    # A receiver gets the message in a direct room with the sender.
                    receiver = para["receiver"]
                    room = f"direct:{data.get('sender') or 'system'}:{receiver}"
                    if room not in self.rooms:
                        self.add_room(room, room_type="direct", members=[receiver])
                if room not in self.rooms:
                    if not self.auto_create:
                        continue  # queued: an unknown room is skipped, as no one can be told
                    self.add_room(room)
                self._store(
                    room=room,
                    sender=data.get("sender") or "system",
                    message=text,
                    message_type=data["messageType"],
                    push=data.get("push", False),
                    skip_total_badge=data.get("skipTotalBadge", False),
                    mentions=[],
                )

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
                answer = Answer(
                    429,
                    {
                        "error": "RATE_LIMIT_EXCEEDED",
                        "message": "Too many requests, please try again later",
                        "retryAfter": wait,
                    },
                )
                if self.retry_after_header:
                    answer.headers["Retry-After"] = str(wait)
                return answer
            self._windows[key] = (window, count + 1)
        return None


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    try:
        value = int(params.get(name, default))
    except ValueError:
        raise ApiFailure(fail(400, "INVALID_REQUEST", f"{name} must be an integer")) from None
    return max(0, value)
