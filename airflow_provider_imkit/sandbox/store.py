"""The sandbox's data: users, rooms, messages and queued batches, behind one lock.

Message times are in ms since the epoch and never go backwards within a sandbox; two
messages may share a millisecond, so a room's timeline is its insertion order (the
list), and "newest first" is that order reversed.
"""

from __future__ import annotations

import copy
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.sandbox.answers import ApiFailure

if TYPE_CHECKING:
    from collections.abc import Callable

APP_ID = "sandbox"
#: Fields kept with a stored message that the API never returns.
_DELIVERY_FLAGS = ("push", "skipTotalBadge")


def new_id() -> str:
    """An id shaped like IMKIT's (MongoDB ObjectId): 24 hex characters."""
    return f"{int(time.time()):08x}{os.urandom(8).hex()}"


class Store:
    """
    Users, rooms, messages and queued batches. Every method takes :attr:`lock`.

    :param auto_create: create unknown rooms and users on first use instead of 404.
    :param batch_delay: seconds before a queued batch is delivered.
    :param clock: a ``time.time``-like function (tests inject one).
    """

    def __init__(
        self, *, auto_create: bool = False, batch_delay: float = 0.05, clock: Callable[[], float] = time.time
    ) -> None:
        self.auto_create = auto_create
        self.batch_delay = batch_delay
        self.clock = clock
        self.lock = threading.RLock()
        self.users: dict[str, dict[str, Any]] = {}
        self.rooms: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.batches: list[tuple[float, dict[str, Any]]] = []
        self._last_ms = 0

    def stamp(self) -> int:
        """Now in ms since the epoch, never earlier than a stamp already given."""
        with self.lock:
            self._last_ms = max(self._last_ms, int(self.clock() * 1000))
            return self._last_ms

    # -- users and rooms ------------------------------------------------------------------------

    def add_user(
        self, user_id: str, nickname: str | None = None, avatar_url: str | None = None
    ) -> dict[str, Any]:
        """Create or update a user; returns a copy."""
        with self.lock:
            now = self.stamp()
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
        """Create (or replace) a room, keeping its messages; returns a copy."""
        with self.lock:
            room_id = room_id or new_id()
            now = self.stamp()
            self.rooms[room_id] = {
                "_id": room_id,
                "name": name or room_id,
                "roomType": room_type,
                "members": list(members or []),
                "appID": APP_ID,
                "createdTimeMS": now,
                "updatedAtMS": now,
            }
            self.messages.setdefault(room_id, [])
            return copy.deepcopy(self.rooms[room_id])

    def room(self, room_id: str) -> dict[str, Any]:
        """The room (created if ``auto_create``), else 404 ROOM_NOT_FOUND."""
        with self.lock:
            if room_id not in self.rooms:
                if not self.auto_create:
                    raise ApiFailure(404, "ROOM_NOT_FOUND", "The specified room does not exist")
                self.add_room(room_id)
            return self.rooms[room_id]

    def user(self, user_id: str) -> dict[str, Any]:
        """The user (created if ``auto_create``), else 404 CLIENT_NOT_FOUND."""
        with self.lock:
            if user_id not in self.users:
                if not self.auto_create:
                    raise ApiFailure(404, "CLIENT_NOT_FOUND", "The specified client does not exist")
                self.add_user(user_id)
            return self.users[user_id]

    def sender_object(self, user_id: str) -> dict[str, Any]:
        """A message's sender as a user object (as the history and recall results show it)."""
        with self.lock:
            user = self.users.get(user_id, {})
            return {
                "_id": user_id,
                "nickname": user.get("nickname", user_id),
                "description": user.get("description", ""),
                "avatarUrl": user.get("avatarUrl", ""),
                "lastLoginTimeMS": user.get("lastLoginTimeMS", 0),
            }

    # -- messages -------------------------------------------------------------------------------

    def store_message(
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
        """Append a message to the room's timeline; returns the stored object itself."""
        with self.lock:
            now = self.stamp()
            stored = {
                "_id": new_id(),
                "room": room,
                "message": copy.deepcopy(message),
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

    def find_message(self, room: str, message_id: str) -> int:
        """The message's position in the room's timeline, else 404 MESSAGE_NOT_FOUND."""
        with self.lock:
            for position, message in enumerate(self.messages.get(room, [])):
                if message["_id"] == message_id:
                    return position
        raise ApiFailure(404, "MESSAGE_NOT_FOUND", f"Message {message_id} not found in room {room}")

    def recall(self, room: str, message_id: str) -> dict[str, Any]:
        """Empty the message and make it a ``recall``; returns the stored object."""
        with self.lock:
            self.room(room)
            message = self.messages[room][self.find_message(room, message_id)]
            message.update({"message": "", "messageType": "recall", "updatedAtMS": self.stamp()})
            return message

    def history(
        self,
        room: str,
        *,
        limit: int,
        before: str | None = None,
        after: str | None = None,
        after_ms: int | None = None,
        time_field: str = "updatedAtMS",
    ) -> dict[str, Any]:
        """
        ``GET /rooms/{room}/messages/v3``: messages strictly older than ``before`` and strictly
        newer than ``after`` (ids, by timeline position), whose ``time_field`` is at or after
        ``after_ms``; newest first, at most ``limit``. ``totalCount`` counts every match.
        """
        with self.lock:
            self.room(room)
            timeline = self.messages.get(room, [])
            start = self.find_message(room, after) + 1 if after else 0
            end = self.find_message(room, before) if before else len(timeline)
            matches = [m for m in timeline[start:end] if after_ms is None or m[time_field] >= after_ms]
            newest = matches[::-1][:limit]
            return {
                "totalCount": len(matches),
                "data": [self.history_view(m) for m in newest],
                "userDeletedIDs": [],
                "inspect": {"limit": limit, "timeRangeField": time_field.removesuffix("MS")},
            }

    def history_view(self, message: dict[str, Any]) -> dict[str, Any]:
        """A message as the history endpoint shows it: ``sender`` is a user object."""
        return {
            "_id": message["_id"],
            "message": copy.deepcopy(message["message"]),
            "room": message["room"],
            "sender": self.sender_object(message["sender"]),
            "messageType": message["messageType"],
            "messageTimeMS": message["messageTimeMS"],
            "updatedAtMS": message["updatedAtMS"],
            "createdAtMS": message["createdAtMS"],
            "reactions": [],
            "reactionCount": 0,
            "isDeleted": bool(message.get("isDeleted", False)),
            "mentions": list(message.get("mentions", [])),
        }

    @staticmethod
    def public(message: dict[str, Any]) -> dict[str, Any]:
        """The message object as ``POST /messages`` returns it (delivery flags are sandbox-only)."""
        return {k: copy.deepcopy(v) for k, v in message.items() if k not in _DELIVERY_FLAGS}

    def received(self, room: str | None = None) -> dict[str, list[dict[str, Any]]] | list[dict[str, Any]]:
        """Messages per room (full objects, with ``push``/``mentions``/``skipTotalBadge`` as sent)."""
        with self.lock:
            self.deliver_batches()
            if room is not None:
                return copy.deepcopy(self.messages.get(room, []))
            return copy.deepcopy(self.messages)

    def clear_messages(self) -> None:
        with self.lock:
            for room in self.messages:
                self.messages[room] = []
            self.batches.clear()

    # -- batches --------------------------------------------------------------------------------

    def queue_batch(self, data: dict[str, Any]) -> str:
        """Queue a validated ``POST /messages/batch`` body; returns its batch id."""
        with self.lock:
            self.batches.append((self.clock() + self.batch_delay, copy.deepcopy(data)))
            return new_id()

    def deliver_batches(self, force: bool = False) -> None:
        """Deliver the batches that are due (every batch with ``force``)."""
        with self.lock:
            now = self.clock()
            due = [b for b in self.batches if force or b[0] <= now]
            self.batches = [b for b in self.batches if b not in due]
            for _, data in due:
                for para in data["paras"]:
                    self._deliver(data, para)

    def _deliver(self, data: dict[str, Any], para: dict[str, Any]) -> None:
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
                return  # queued: an unknown room is skipped, as no one can be told
            self.add_room(room)
        self.store_message(
            room=room,
            sender=data.get("sender") or "system",
            message=text,
            message_type=data["messageType"],
            push=data.get("push", False),
            skip_total_badge=data.get("skipTotalBadge", False),
            mentions=[],
        )
