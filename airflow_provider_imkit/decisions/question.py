"""A question posted in a room, which replies count as its answer, and how a wait ended."""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_imkit.client.read_back import created_ms, sender_id

#: At most this long after the deadline (ms), replies made in time are still looked for.
DEADLINE_GRACE_MS = 5_000
#: Message types that are never a reply.
_NOT_REPLIES = {"recall"}


# -- which replies count ------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """
    A question posted in a room, and what may answer it.

    :param room: the room it was posted in.
    :param sender: who posted it (its own messages never count).
    :param approvers: user ids whose replies count.
    :param options: the options, in order (numbers start at 1).
    :param message_id: the question's ``_id``.
    :param asked_at_ms: the question's ``createdAtMS`` (the server's clock): replies from then on.
    :param deadline_ms: replies created after this (server clock, ms) do not count; None: no end.
    :param approve_options: the options that let the pipeline go on.
    :param default_option: the option chosen on timeout; None: the task fails.
    """

    room: str
    sender: str
    approvers: tuple[str, ...]
    options: tuple[str, ...]
    message_id: str
    asked_at_ms: int
    deadline_ms: int | None = None
    approve_options: tuple[str, ...] = ()
    default_option: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (the trigger's serialized kwargs hold these; no secret)."""
        data = asdict(self)
        data["approvers"], data["options"] = list(self.approvers), list(self.options)
        data["approve_options"] = list(self.approve_options)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Question:
        return cls(
            room=data["room"],
            sender=data["sender"],
            approvers=tuple(data["approvers"]),
            options=tuple(data["options"]),
            message_id=data["message_id"],
            asked_at_ms=int(data["asked_at_ms"]),
            deadline_ms=None if data.get("deadline_ms") is None else int(data["deadline_ms"]),
            approve_options=tuple(data.get("approve_options") or ()),
            default_option=data.get("default_option"),
        )

    @property
    def grace_ms(self) -> int:
        """How long after the deadline the room is still read for replies made in time, for
        clocks that disagree: a tenth of the wait, at most 5 s."""
        if self.deadline_ms is None:
            return 0
        return min(DEADLINE_GRACE_MS, max(0, self.deadline_ms - self.asked_at_ms) // 10)


def chosen_option(item: dict[str, Any], question: Question) -> str | None:
    """
    The option a listed message chooses, or None when it does not count: not after the
    question or after the deadline, the question itself, the bot's own message, a sender who
    is not an approver, recalled or deleted, a reply to another message, not text, or text
    that is neither an option (trimmed, ignoring case and full-width forms) nor an option's
    number.
    """
    created = created_ms(item)
    if created is None or created < question.asked_at_ms:
        return None
    if question.deadline_ms is not None and created > question.deadline_ms:
        return None
    who = sender_id(item)
    if item.get("_id") == question.message_id or who == question.sender or who not in question.approvers:
        return None
    if item.get("messageType") in _NOT_REPLIES or item.get("isDeleted"):
        return None
    replied_to = item.get("reply")
    if isinstance(replied_to, str) and replied_to and replied_to != question.message_id:
        return None  # a reply to another message (another question, say)
    text = item.get("message")
    if not isinstance(text, str):
        return None
    answer = _normal(text)
    for number, option in enumerate(question.options, 1):
        if answer in (_normal(option), str(number)):
            return option
    return None


def _normal(text: str) -> str:
    """Trimmed, case-folded, and NFKC-normalised (full-width digits and letters from CJK keyboards)."""
    return unicodedata.normalize("NFKC", text).strip().casefold()
