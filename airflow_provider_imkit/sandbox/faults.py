"""Scripted faults: what the sandbox does instead of (or around) a normal answer.

Each kind is one small function next to its description, registered with ``@_kind``. It
gets the request being answered (an :class:`Exchange`: the socket-level handle) and the
:class:`Fault`, and answers, stalls or hangs up as it likes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_imkit.sandbox.answers import JSON_TYPE, Answer, RequestRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TypeAlias

    #: What a fault kind does: answer (or not) one request.
    Action: TypeAlias = Callable[["Exchange", "Fault"], None]


class Exchange(Protocol):
    """One request being answered, as a fault (and the pipeline) sees it."""

    #: What the sandbox saw; ``status`` is set by :meth:`send`, ``completed`` by a failed write.
    record: RequestRecord

    @property
    def method(self) -> str: ...

    @property
    def target(self) -> str:
        """The request target: path and query."""

    @property
    def body(self) -> bytes: ...

    def header(self, name: str) -> str | None: ...

    def process(self) -> Answer:
        """Run the request through the API (it may store a message); nothing is sent."""

    def wait_for_release(self, timeout: float) -> None:
        """Block until the sandbox's held answers are released (or ``timeout`` seconds)."""

    def process_later(self, *, delay: float, reads: int) -> None:
        """Run the request through the API later: after ``delay`` seconds, or (``reads`` > 0)
        when a room's messages have been read ``reads`` times since; nothing is sent."""

    def reply(self, answer: Answer) -> None:
        """Send a JSON answer."""

    def send(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send a whole response (status recorded)."""

    def write_raw(self, data: bytes) -> bool:
        """Write bytes as they are; False once the client is gone."""

    def drop(self) -> None:
        """Close the connection without (more of) a response."""


@dataclass
class Fault:
    """
    One scripted response. Build it with the class methods, or from JSON with :meth:`from_json`.

    :param kind: one of :data:`FAULT_KINDS`.
    :param status: HTTP status for ``status``, ``html`` (default 502).
    :param body: body for ``status``: a dict (sent as JSON) or text.
    :param headers: extra response headers for ``status`` (e.g. ``Retry-After``).
    :param delay: seconds for ``delay``, ``trickle`` (per byte) and ``store_late``.
    :param rc: the envelope RC for ``rc_error``.
    :param reads: for ``store_late``: store once the rooms' messages have been read this many
        times since (a clock-free "later", for tests); 0 (default) waits ``delay`` seconds.
    """

    kind: str
    status: int | None = None
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    rc: int = 500
    reads: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(_KINDS)}")
        if self.kind == "status" and not isinstance(self.status, int):
            raise ValueError("a 'status' fault needs an integer 'status'")
        if not isinstance(self.delay, int | float) or self.delay < 0:
            raise ValueError("'delay' must be a non-negative number of seconds")
        if not isinstance(self.reads, int) or self.reads < 0:
            raise ValueError("'reads' must be a non-negative whole number")

    @classmethod
    def respond(
        cls, status: int, body: dict[str, Any] | str | None = None, headers: dict[str, str] | None = None
    ) -> Fault:
        """Answer ``status`` with ``body`` and ``headers``, without processing the request."""
        return cls("status", status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def rate_limited(cls, retry_after: float = 1, header: bool = False) -> Fault:
        """A documented 429: ``retryAfter`` in the body, and the header too if asked."""
        body = {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests", "retryAfter": retry_after}
        return cls.respond(429, body, {"Retry-After": f"{retry_after:g}"} if header else None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from the JSON accepted by ``POST /_sandbox/faults``."""
        allowed = {"kind", "status", "body", "headers", "delay", "rc", "reads"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        return cls(**data)

    def apply(self, exchange: Exchange) -> None:
        """Answer (or not) the request in this fault's way."""
        _KINDS[self.kind][1](exchange, self)


#: kind -> (description, action), in the order of the README's table.
_KINDS: dict[str, tuple[str, Action]] = {}


def _kind(name: str, description: str) -> Callable[[Action], Action]:
    """Register the decorated function as fault kind ``name``."""

    def register(action: Action) -> Action:
        _KINDS[name] = (description, action)
        return action

    return register


@_kind("status", "answer with the given status, body and headers; the request is not processed")
def _status(exchange: Exchange, fault: Fault) -> None:
    if isinstance(fault.body, dict | list):
        body, content_type = json.dumps(fault.body, ensure_ascii=False).encode(), JSON_TYPE
    else:
        body, content_type = (fault.body or "").encode(), "text/plain; charset=utf-8"
    exchange.send(fault.status or 500, body, content_type, fault.headers)


@_kind("delay", "wait `delay` seconds, then answer normally")
def _delay(exchange: Exchange, fault: Fault) -> None:
    time.sleep(fault.delay)
    exchange.reply(exchange.process())


@_kind("hold", "hold the answer until released (`ImkitSandbox.release()`), at most `delay` s, then answer")
def _hold(exchange: Exchange, fault: Fault) -> None:
    exchange.wait_for_release(fault.delay)
    exchange.reply(exchange.process())


@_kind("close_before", "close the connection without answering; the request is not processed")
def _close_before(exchange: Exchange, fault: Fault) -> None:
    exchange.drop()


@_kind("close_after", "process the request (a message is stored), then close without answering")
def _close_after(exchange: Exchange, fault: Fault) -> None:
    exchange.process()
    exchange.drop()


@_kind(
    "store_late",
    "give no answer (or `status`, e.g. 504 as a proxy would), and store the message `delay` s "
    "later (or after `reads` reads of a room): IMKIT storing after the client gave up",
)
def _store_late(exchange: Exchange, fault: Fault) -> None:
    exchange.process_later(delay=fault.delay, reads=fault.reads)
    if fault.status is None:
        exchange.drop()
    else:
        exchange.send(
            fault.status, _HTML_PAGE.format(status=fault.status).encode(), "text/html; charset=utf-8"
        )


@_kind("malformed_json", "answer 200 with a truncated JSON body; the request is not processed")
def _malformed_json(exchange: Exchange, fault: Fault) -> None:
    exchange.send(200, b'{"RC": 0, "RM": "OK", "result": {"_id": "', JSON_TYPE)


_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>{status} Bad Gateway</title></head>"
    "<body><center><h1>{status} Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


@_kind("html", "answer with an HTML error page (default 502); the request is not processed")
def _html(exchange: Exchange, fault: Fault) -> None:
    status = fault.status or 502
    exchange.send(status, _HTML_PAGE.format(status=status).encode(), "text/html; charset=utf-8")


@_kind("rc_error", "answer HTTP 200 with RC != 0 (default RC 500); the request is not processed")
def _rc_error(exchange: Exchange, fault: Fault) -> None:
    error = {"code": "INTERNAL_ERROR", "message": "Something went wrong"}
    exchange.reply(Answer(200, {"RC": fault.rc, "RM": "Internal error", "error": error}))


@_kind("empty", "answer 200 with an empty body; the request is not processed")
def _empty(exchange: Exchange, fault: Fault) -> None:
    exchange.send(200, b"", JSON_TYPE)


@_kind("trickle", "process the request, then send the answer one byte every `delay` seconds")
def _trickle(exchange: Exchange, fault: Fault) -> None:
    # The whole answer, status line and headers included, one byte at a time.
    answer = exchange.process()
    exchange.record.status = answer.status
    payload = answer.encode()
    try:
        reason = HTTPStatus(answer.status).phrase
    except ValueError:
        reason = ""
    head = (
        f"HTTP/1.1 {answer.status} {reason}\r\n"
        f"Content-Type: {JSON_TYPE}\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode("latin-1")
    raw = head + payload
    for index in range(len(raw)):
        time.sleep(fault.delay)
        if not exchange.write_raw(raw[index : index + 1]):
            return


#: The kinds of fault, and what each does to one request (the README's table).
FAULT_KINDS: dict[str, str] = {name: description for name, (description, _) in _KINDS.items()}
