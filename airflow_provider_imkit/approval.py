"""Approvals asked in an IMKIT room: the question, which replies count, and the wait for one.

The operator posts a question; then the room is read (``GET /rooms/{room}/messages/v3``,
messages created since the question) until an approver replies with an option's name or
number, or the time is up. The same :class:`ApprovalWait` decides for the trigger (in the
triggerer) and for the non-deferrable wait (in the worker). No Airflow in here.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_imkit import validation
from airflow_provider_imkit.exceptions import ImkitReadBackError, ImkitValidationError
from airflow_provider_imkit.read_back import find_message, room_messages, sender_id

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_provider_imkit.client import ImkitClient

DEFAULT_OPTIONS = ("Approve", "Reject")
DEFAULT_APPROVE_OPTIONS = ("Approve",)
#: Longest option text (a chat reply must be able to repeat it).
MAX_OPTION_CHARS = 100
#: Pages of 100 messages read per poll before the room is called too busy to read.
POLL_PAGES = 20
#: Longest wait between two reads after read errors (seconds).
MAX_ERROR_BACKOFF = 300.0
#: After the timeout, how long reads may keep failing before the wait ends without them (s).
READ_GRACE_AFTER_TIMEOUT = 300.0
#: At most this long after the deadline (ms), replies made in time are still looked for.
DEADLINE_GRACE_MS = 5_000
#: Each read starts this much before the newest message seen (ms): a reply stored late
#: with an earlier time is still read (re-reading is harmless: nothing re-read counted).
CURSOR_OVERLAP_MS = 5_000
#: Host and IMKIT clocks that differ by no more than this (s) are taken to agree: a ``Date``
#: header says the time to the second only.
CLOCK_AGREEMENT_S = 1.5
#: Message types that are never a reply.
_NOT_REPLIES = {"recall"}


# -- checking the operator's arguments ----------------------------------------------------------


def options_list(field_name: str, value: Any, *, numbered: bool = True) -> list[str]:
    """
    Check a list of options: a list of strings, or text (a rendered list, ``"a,b"``).
    Each option is trimmed, visible text without line breaks, at most 100 characters; no two
    the same ignoring case; an option spelt as a number must be its own position (``"2"``
    second, checked with ``numbered``), or a reply ``2`` would be ambiguous.

    :raises ImkitValidationError: naming the field (``options[1]``...) and the problem.
    """
    if isinstance(value, str):
        value = validation.split_list_text(field_name, value)
    if isinstance(value, bytes | bytearray | dict) or not isinstance(value, Iterable):
        raise ImkitValidationError(field_name, f"must be a list of option names, got {type(value).__name__}")
    options: list[str] = []
    for index, item in enumerate(value):
        name = f"{field_name}[{index}]"
        if not isinstance(item, str) or not item.strip():
            raise ImkitValidationError(name, f"must be a non-empty string, got {item!r}")
        option = item.strip()
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in option):
            raise ImkitValidationError(name, f"must be one line without control characters, got {option!r}")
        if len(option) > MAX_OPTION_CHARS:
            raise ImkitValidationError(name, f"must be at most {MAX_OPTION_CHARS} characters")
        if option.casefold() in (o.casefold() for o in options):
            raise ImkitValidationError(name, f"{option!r} is given twice (options ignore case)")
        options.append(option)
    if not options:
        raise ImkitValidationError(field_name, "must name at least one option")
    for index, option in enumerate(options if numbered else ()):
        if option.isdecimal() and int(option) != index + 1:
            raise ImkitValidationError(
                f"{field_name}[{index}]",
                f"{option!r} is a number but option {index + 1}: a reply {option!r} would be ambiguous",
            )
    return options


def pick_options(field_name: str, value: Any, options: Sequence[str]) -> list[str]:
    """Check that every name in ``value`` is one of ``options`` (ignoring case); return them
    spelt as in ``options``."""
    by_key = {o.casefold(): o for o in options}
    if isinstance(value, str) and value.strip().casefold() in by_key:
        value = [value]  # one option, even one with a comma in it
    picked = []
    for index, name in enumerate(options_list(field_name, value, numbered=False)):
        if name.casefold() not in by_key:
            raise ImkitValidationError(
                f"{field_name}[{index}]", f"{name!r} is not one of the options {list(options)}"
            )
        picked.append(by_key[name.casefold()])
    return picked


def approvers_list(value: Any) -> list[str]:
    """The approvers' user ids (list syntax as for ``mentions``); at least one."""
    approvers = validation.user_ids("approvers", value)
    if not approvers:
        raise ImkitValidationError(
            "approvers", "must name at least one IMKIT user id: only their replies count"
        )
    return approvers


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


def imkit_now(client: ImkitClient, local: float) -> float:
    """
    IMKIT's time now (s since the epoch): approval deadlines are on its clock, as the replies'
    times are. ``local`` (this host's time) while it agrees with the client's last answer
    (its ``Date`` header, to the second) within :data:`CLOCK_AGREEMENT_S`; else the ``Date``.
    """
    server_time = getattr(client, "server_time", None)
    told = server_time() if callable(server_time) else None
    if told is None or abs(float(told) - local) <= CLOCK_AGREEMENT_S:
        return local
    return float(told) + 0.5  # a Date header is rounded down to the second


def undecided_question(
    client: ImkitClient,
    asked: Question,
    text: str,
    *,
    since_ms: int,
    settled_after: float = 0.0,
    seen: set[str] | None = None,
) -> dict[str, Any] | None:
    """
    An earlier try's question, still open, for a later try to wait on instead of asking again:
    the newest question ``text`` that ``asked.sender`` posted in ``asked.room`` since
    ``since_ms``, when nothing has decided it yet: no outcome note for it, no counting reply
    (``asked``'s approvers and options), and its wait (``asked``'s deadline less its asking
    time, on IMKIT's clock) not over. A decided question is never reused; else None.

    :param asked: the question as this try would ask it (its ``message_id`` and times are
        replaced by the found question's).
    :param settled_after: the settle rule for the earlier try's post (seconds since the
        epoch): while nothing is found, the room is read again until then.
    :param seen: filled with the id of the question found, decided or not (so the caller can
        tell an earlier try's question from its own new one).
    :raises ImkitReadBackError: the room holds too many messages to tell.
    """
    seen = set() if seen is None else seen
    found = find_message(
        client,
        room=asked.room,
        sender=asked.sender,
        message=text,
        message_type="text",
        mentions=asked.approvers,
        since_ms=since_ms,
        settled_after=settled_after,
    )
    if found is None:
        return None
    seen.add(str(found.get("_id")))
    asked_at = created_ms(found) or since_ms
    wait_ms = None if asked.deadline_ms is None else asked.deadline_ms - asked.asked_at_ms
    question = replace(
        asked,
        message_id=str(found.get("_id")),
        asked_at_ms=asked_at,
        deadline_ms=None if wait_ms is None else asked_at + wait_ms,
    )
    if question.deadline_ms is not None and imkit_now(client, time.time()) * 1000 > question.deadline_ms:
        return None  # its wait is over: timed out, whether or not its try said so
    for item in room_messages(client, asked.room, since_ms=asked_at):
        if sender_id(item) == asked.sender and is_outcome_text(item.get("message"), question.message_id):
            return None
        if chosen_option(item, question) is not None:
            return None
    return found


def timeout_text(
    subject: str, waited_seconds: float, default: str | None, approving: bool, question_id: str
) -> str:
    """What the room is told when nobody answered in time (with the question it closes)."""
    head = f"No answer within {human_duration(waited_seconds)} to: {subject.strip()}"
    if default is None:
        return f"{head}\nThe task fails; nothing goes ahead.\n{question_line(question_id)}"
    outcome = "the pipeline goes ahead" if approving else "the pipeline does not go ahead"
    return f'{head}\nGoing with the default, "{default}": {outcome}.\n{question_line(question_id)}'


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


def created_ms(item: dict[str, Any]) -> int | None:
    """A listed message's creation time (ms), else its message time, else None."""
    for name in ("createdAtMS", "messageTimeMS"):
        value = item.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None


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


# -- the wait -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """
    How a wait ended: ``chosen`` (by an approver's reply), ``timeout`` or ``error`` (the room
    cannot be read: a permanent error). Travels as the trigger event's payload.
    """

    status: Literal["chosen", "timeout", "error"]
    chosen: str | None = None
    by: str | None = None
    message_id: str | None = None
    at_ms: int | None = None
    error: str | None = None

    def to_event(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_event(cls, event: Any) -> Outcome:
        if not isinstance(event, dict) or event.get("status") not in ("chosen", "timeout", "error"):
            return cls("error", error=f"unexpected trigger event {event!r}")
        return cls(
            status=event["status"],
            chosen=event.get("chosen"),
            by=event.get("by"),
            message_id=event.get("message_id"),
            at_ms=event.get("at_ms"),
            error=event.get("error"),
        )


@dataclass
class ApprovalWait:
    """
    One approval's wait: read the room since the last read, decide, or say how long to sleep.

    Drive it with :meth:`poll` between sleeps (see :meth:`run` and the trigger). Reads resume
    from the newest message already seen; transient read errors back off (doubling from
    ``poll_interval`` up to 5 minutes) and never end the wait before the deadline.

    :param question: what is asked, and where.
    :param poll_interval: seconds between reads.
    :param clock: the time in seconds since the epoch (injected by tests).
    :param log: where read failures are logged (a warning each, with the next wait).
    """

    question: Question
    poll_interval: float
    clock: Callable[[], float] = time.time
    log: Any = None
    failures: int = field(default=0, init=False)
    last_error: str | None = field(default=None, init=False)
    cursor_ms: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.cursor_ms = self.question.asked_at_ms

    def read(self, client: ImkitClient) -> Outcome | None:
        """Read the messages since the cursor (oldest first): the first counting reply's
        outcome, else None (the cursor moves on). Raises what the read raises."""
        try:
            items = list(
                room_messages(
                    client,
                    self.question.room,
                    since_ms=self.cursor_ms,
                    pages=POLL_PAGES,
                    what="since the last read; too busy to find the first reply (use a quieter room)",
                )
            )
        except ImkitReadBackError as exc:
            exc.transient = False  # reading again would meet the same messages
            raise
        items.reverse()  # the room lists newest first
        items.sort(key=lambda item: created_ms(item) or 0)  # stable: ties keep the room's order
        for item in items:
            option = chosen_option(item, self.question)
            if option is not None:
                return Outcome(
                    "chosen", chosen=option, by=str(sender_id(item)), message_id=item.get("_id"),
                    at_ms=created_ms(item),
                )  # fmt: skip
        newest = max([self.cursor_ms, *(created_ms(i) or 0 for i in items)])
        self.cursor_ms = max(self.question.asked_at_ms, newest - CURSOR_OVERLAP_MS)
        return None

    def server_now(self, client: ImkitClient) -> float:
        """IMKIT's time now (:func:`imkit_now`, with this wait's clock as the host's)."""
        return imkit_now(client, self.clock())

    def poll(self, client: ImkitClient) -> Outcome | float:
        """One read: an :class:`Outcome` when the wait is over, else seconds to sleep."""
        before = self.clock()
        try:
            outcome = self.read(client)
        except Exception as exc:  # an IMKIT error, or the connection's lookup failing
            return self._after_error(self.server_now(client), exc)
        # When the read began, on IMKIT's clock: its answer's time less how long the read took
        # (a host clock ahead or behind of IMKIT's neither ends the wait early nor keeps it
        # late, and a slow read does not count replies made while it ran as read).
        started = self.server_now(client) - max(0.0, self.clock() - before)
        self.failures = 0
        if outcome is not None:
            return outcome
        deadline = self.question.deadline_ms
        # The read began after the deadline (and the grace for a ``Date`` header that is only
        # to the second): every reply made in time has been seen.
        if deadline is None:
            return self.poll_interval
        end = (deadline + self.question.grace_ms) / 1000
        if started >= end:
            return Outcome("timeout")
        return max(0.0, min(self.poll_interval, end - started))

    def _after_error(self, started: float, exc: Exception) -> Outcome | float:
        if not getattr(exc, "transient", True):
            return Outcome("error", error=str(exc))
        self.failures += 1
        self.last_error = str(exc)
        deadline = self.question.deadline_ms
        if deadline is not None and started * 1000 >= deadline + READ_GRACE_AFTER_TIMEOUT * 1000:
            return Outcome("timeout", error=f"the room could not be read at the deadline: {exc}")
        backoff = self.poll_interval * 2 ** min(self.failures - 1, 30)
        delay = min(backoff, max(MAX_ERROR_BACKOFF, self.poll_interval))
        if self.log is not None:
            self.log.warning(
                "Reading room %s failed (%d in a row: %s); again in %.0f s",
                self.question.room,
                self.failures,
                self.last_error,
                delay,
            )
        return delay

    def run(self, client: ImkitClient, sleep: Callable[[float], Any] = time.sleep) -> Outcome:
        """Wait in this thread (the non-deferrable mode) until the wait is over."""
        while True:
            step = self.poll(client)
            if isinstance(step, Outcome):
                return step
            sleep(step)
