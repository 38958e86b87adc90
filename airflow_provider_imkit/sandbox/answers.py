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
    #: The client's User-Agent (the provider names the Airflow component in it).
    user_agent: str | None = None
    #: The ``_id`` of the object a successful answer returned (a stored message...).
    result_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)
