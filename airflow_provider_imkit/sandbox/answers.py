"""What the sandbox answers: the documented envelope, built in one place."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Answer:
    """A status and a JSON body (plus headers)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


def ok(result: Any) -> Answer:
    """The success envelope: ``{"RC": 0, "RM": "OK", "result": ...}``."""
    return Answer(200, {"RC": 0, "RM": "OK", "result": result})


def fail(status: int, code: str, message: str) -> Answer:
    """The nested error envelope: ``{"RC": status, "RM": message, "error": {code, message}}``."""
    return Answer(status, {"RC": status, "RM": message, "error": {"code": code, "message": message}})


def internal_error(exc: BaseException) -> Answer:
    """The 500 for a bug inside the sandbox itself (never an IMKIT behaviour)."""
    return fail(
        500,
        "SANDBOX_INTERNAL_ERROR",
        f"Sandbox internal error (a bug in the sandbox, not an IMKIT answer): {type(exc).__name__}: {exc}",
    )


class ApiFailure(ValueError):
    """Raised by an endpoint to answer with an error envelope (``.answer``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.answer = fail(status, code, message)
