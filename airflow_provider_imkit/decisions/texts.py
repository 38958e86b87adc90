"""What is said in the room: the question, the acknowledgement of a reply, the timeout note."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


# -- what is said in the room -------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """``90`` -> ``"1 minute 30 seconds"``; whole days, hours, minutes and seconds, two at most."""
    rest = max(0, round(seconds))
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts[:2]) or "0 seconds"


def numbered(options: Sequence[str]) -> list[str]:
    """``["1. Approve", "2. Reject"]``: options as the room shows them."""
    return [f"{number}. {option}" for number, option in enumerate(options, 1)]


def question_text(
    *,
    subject: str,
    body: str | None,
    options: Sequence[str],
    approvers: Sequence[str],
    timeout_seconds: float | None,
    link: str | None,
) -> str:
    """The question posted in the room: subject, body, numbered options, how to answer, who
    decides, how long the pipeline waits and the task's link. Stable across task tries."""
    lines = [subject.strip()]
    if body and body.strip():
        lines += ["", body.strip()]
    lines += ["", *numbered(options), ""]
    lines.append("Reply with an option's name or number.")
    lines.append("Deciding: " + ", ".join(f"@{user}" for user in approvers))
    if timeout_seconds is not None:
        lines.append(f"Waiting up to {human_duration(timeout_seconds)} for an answer.")
    if link:
        lines.append(f"Task: {link}")
    return "\n".join(lines)


def decision_text(subject: str, chosen: str, by: str, approving: bool, question_id: str) -> str:
    """The acknowledgement of a reply: ``Approved by alice ("Approve"): <subject>``, with the
    question it answers (``Question: <id>``), so that no try's acknowledgement is ever taken
    for another's, even when the texts are otherwise the same."""
    verdict = "Approved" if approving else "Rejected"
    return f'{verdict} by {by} ("{chosen}"): {subject.strip()}\n{question_line(question_id)}'


def question_line(question_id: str) -> str:
    """The last line of every outcome note: which question it closes."""
    return f"Question: {question_id}"


_OUTCOME_HEADS = ("Approved by ", "Rejected by ", "No answer within ")


def is_outcome_text(text: Any, question_id: str) -> bool:
    """Whether a message is the acknowledgement or timeout note of question ``question_id``."""
    return (
        isinstance(text, str)
        and text.startswith(_OUTCOME_HEADS)
        and text.rstrip().endswith(question_line(question_id))
    )


def timeout_text(
    subject: str, waited_seconds: float, default: str | None, approving: bool, question_id: str
) -> str:
    """What the room is told when nobody answered in time (with the question it closes)."""
    head = f"No answer within {human_duration(waited_seconds)} to: {subject.strip()}"
    if default is None:
        return f"{head}\nThe task fails; nothing goes ahead.\n{question_line(question_id)}"
    outcome = "the pipeline goes ahead" if approving else "the pipeline does not go ahead"
    return f'{head}\nGoing with the default, "{default}": {outcome}.\n{question_line(question_id)}'
