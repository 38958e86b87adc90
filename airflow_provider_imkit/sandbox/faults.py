"""Scripted faults: what the sandbox does instead of (or around) a normal answer."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: The kinds of fault, and what each does to one request.
FAULT_KINDS = {
    "status": "answer with the given status, body and headers; the request is not processed",
    "delay": "wait `delay` seconds, then answer normally",
    "close_before": "close the connection without answering; the request is not processed",
    "close_after": "process the request (a message is stored), then close without answering",
    "malformed_json": "answer 200 with a truncated JSON body; the request is not processed",
    "html": "answer with an HTML error page (default 502); the request is not processed",
    "rc_error": "answer HTTP 200 with RC != 0 (default RC 500); the request is not processed",
    "empty": "answer 200 with an empty body; the request is not processed",
    "trickle": "process the request, then send the answer one byte every `delay` seconds",
}


@dataclass
class Fault:
    """
    One scripted response. Build it with the class methods, or from JSON with :meth:`from_json`.

    :param kind: one of :data:`FAULT_KINDS`.
    :param status: HTTP status for ``status``, ``html`` (default 502).
    :param body: body for ``status``: a dict (sent as JSON) or text.
    :param headers: extra response headers for ``status`` (e.g. ``Retry-After``).
    :param delay: seconds for ``delay`` and ``trickle`` (per byte).
    :param rc: the envelope RC for ``rc_error``.
    """

    kind: str
    status: int | None = None
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    rc: int = 500

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(FAULT_KINDS)}")
        if self.kind == "status" and not isinstance(self.status, int):
            raise ValueError("a 'status' fault needs an integer 'status'")
        if not isinstance(self.delay, int | float) or self.delay < 0:
            raise ValueError("'delay' must be a non-negative number of seconds")

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
        allowed = {"kind", "status", "body", "headers", "delay", "rc"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def body_bytes(self) -> bytes:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body, ensure_ascii=False).encode("utf-8")
        return (self.body or "").encode("utf-8")
