"""People in the sandbox: scripted replies to questions, and replies typed in the inbox page.

A scripted reply (:class:`AutoReply`) answers the next message posted in its room that
mentions anyone, as its user, right after it (an approver answering an approval
question, unattended). The inbox page's reply box posts as any user, the way a person would
answer from a chat app. Both store messages exactly as ``POST /messages`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from airflow_provider_imkit.sandbox.answers import ApiFailure

#: Where the inbox page's reply box posts (form-encoded: room, user, message).
REPLY_PATH = "/inbox/reply"


@dataclass(frozen=True)
class AutoReply:
    """Answer the next message in ``room`` from someone else that mentions anyone (a question
    naming who should answer) and contains ``match``, as ``user``, with ``text``. ``user``
    need not be mentioned: a bystander's reply can be scripted too."""

    room: str
    user: str
    text: str
    #: Answer only a question whose text contains this (e.g. the run's date); None: any.
    match: str | None = None
    #: Post right after the room's next read instead (a partner's bot that speaks once
    #: someone watches the room: a sensor's first read); ``match`` is then unused.
    on_read: bool = False

    @classmethod
    def from_json(cls, data: Any) -> AutoReply:
        fields = ("room", "user", "text")
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in fields):
            raise ValueError("an auto-reply needs string fields room, user and text")
        match = data.get("match")
        if match is not None and not isinstance(match, str):
            raise ValueError("an auto-reply's match must be a string")
        if not isinstance(data.get("on_read", False), bool):
            raise ValueError("an auto-reply's on_read must be true or false")
        return cls(data["room"], data["user"], data["text"], match, data.get("on_read", False))

    def answers(self, message: dict[str, Any]) -> bool:
        return (
            not self.on_read
            and message["room"] == self.room
            and message["sender"] != self.user
            and bool(message.get("mentions"))
            and (self.match is None or self.match in str(message.get("message")))
        )


class _Sends(Protocol):
    """What a reply needs of the sandbox: its ``POST /messages``."""

    def send_message(self, data: dict[str, Any]) -> dict[str, Any]: ...


def reply_from_form(app: _Sends, body: bytes) -> dict[str, Any]:
    """Store the inbox form's reply (``room``, ``user``, ``message``); ``ApiFailure`` when
    a field is missing or the room or user is unknown."""
    fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    missing = [name for name in ("room", "user", "message") if not fields.get(name, "").strip()]
    if missing:
        raise ApiFailure(400, "MISSING_PARAMETER", f"Missing required parameter: {', '.join(missing)}")
    data = {"room": fields["room"], "sender": fields["user"], "message": fields["message"]}
    return app.send_message({**data, "messageType": "text"})
