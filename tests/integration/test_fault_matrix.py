"""The fault matrix: every failure a send can meet, over real HTTP against the sandbox.

For each case: the outcome (the result, or one exception class), the attempts the server
saw, the messages it stored, and the waits the hook asked for (an injected sleep records
them: no real backoff sleeps). ``python -m tests.integration.test_fault_matrix`` prints
the docs' table (docs/delivery.md) from this same table, and a test checks the docs carry it.
"""

# ruff: noqa: E501  (the case table reads best one case per line)
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import (
    ImkitApiError,
    ImkitAuthenticationError,
    ImkitBadRequestError,
    ImkitConnectionError,
    ImkitNotFoundError,
    ImkitRateLimitError,
    ImkitServerError,
)
from airflow_provider_imkit.hooks.imkit import ImkitHook
from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
from tests.conftest import API_KEY, ROOT, FakeTime

SEND: dict[str, Any] = {"room": "ops", "sender": "bot", "message": "fault matrix"}
DOWN = {"RC": 503, "RM": "Service Unavailable"}
ERROR_500 = {"RC": 500, "RM": "Internal Server Error"}
#: The three answers to an ambiguous failure (the default is reconcile).
FAIL = {"retry": RetryPolicy(on_ambiguous="fail")}
RESEND = {"retry": RetryPolicy(on_ambiguous="resend")}
HISTORY = "/rooms/ops/messages/v3"


#: The read-back's waits inside the settle window (10 s by default, read 5 times).
SETTLE: list[tuple[float, float] | float] = [2.5, 2.5, 2.5, 2.5]


def backoff(low: float, high: float) -> tuple[float, float]:
    """A jittered backoff wait: anywhere from ``low`` to ``high`` seconds."""
    return (low, high)


@dataclass
class Case:
    name: str
    outcome: type[Exception] | None  # None: the message object is returned
    attempts: int  # requests the server saw
    stored: int  # messages the room holds afterwards
    waits: list[tuple[float, float] | float] = field(default_factory=list)  # seconds asked, in order
    faults: list[tuple[Fault, int]] = field(default_factory=list)
    read_faults: list[tuple[Fault, int]] = field(default_factory=list)  # on the room's history
    send: dict[str, Any] = field(default_factory=dict)  # send_message overrides
    hook: dict[str, Any] = field(default_factory=dict)  # ImkitHook arguments
    conn: dict[str, Any] = field(default_factory=dict)  # connection overrides
    code: str | None = None  # expected error code
    note: str = ""


CASES = [
    Case("429 with Retry-After header", None, 2, 1, [2.0],
         faults=[(Fault.respond(429, {"error": "RATE_LIMIT_EXCEEDED", "message": "slow down"}, {"Retry-After": "2"}), 1)],
         note="waits exactly what was asked"),
    Case("429 with only the body's retryAfter", None, 2, 1, [3.0], faults=[(Fault.rate_limited(3), 1)]),
    Case("429 with both: the larger wins", None, 2, 1, [5.0], faults=[(Fault.respond(429, {"error": "RATE_LIMIT_EXCEEDED", "retryAfter": 5}, {"Retry-After": "1"}), 1)]),
    Case("429 asking longer than the cap (60 s)", ImkitRateLimitError, 1, 0, faults=[(Fault.rate_limited(600), 1)],
         code="RATE_LIMIT_EXCEEDED", note="raised at once with retry_after=600"),
    Case("429 asking longer than the deadline left", ImkitRateLimitError, 1, 0, faults=[(Fault.rate_limited(30), 1)],
         hook={"deadline": 10}, note="no wait that would end past the deadline"),
    Case("500, on_ambiguous=fail", ImkitServerError, 1, 0, faults=[(Fault.respond(500, ERROR_500), 1)], hook=FAIL,
         note="may have been stored: never sent again"),
    Case("500, on_ambiguous=resend", None, 2, 1, [backoff(0.5, 1.0)],
         faults=[(Fault.respond(500, ERROR_500), 1)], hook=RESEND),
    Case("500, reconcile (default): read-back proves it absent", None, 2, 1, [backoff(0.5, 1.0)],
         faults=[(Fault.respond(500, ERROR_500), 1)], note="sent again once: exactly one stored"),
    Case("502 with an HTML page, on_ambiguous=fail", ImkitServerError, 1, 0, faults=[(Fault("html", status=502), 1)], hook=FAIL),
    Case("503 once", None, 2, 1, [backoff(0.5, 1.0)], faults=[(Fault.respond(503, DOWN), 1)]),
    Case("503 every time", ImkitServerError, 3, 0, [backoff(0.5, 1.0), backoff(1.0, 2.0)], faults=[(Fault.respond(503, DOWN), 5)]),
    Case("504, on_ambiguous=fail", ImkitServerError, 1, 0, faults=[(Fault.respond(504, "Gateway Timeout"), 1)], hook=FAIL),
    Case("connection refused", ImkitConnectionError, 0, 0, [backoff(0.5, 1.0), backoff(1.0, 2.0)],
         conn={"host": "closed-port"}, note="3 attempts, none reached a server"),
    Case("connection closed before the response, on_ambiguous=fail", ImkitConnectionError, 1, 0,
         faults=[(Fault("close_before"), 1)], hook=FAIL, note="maybe_delivered=True"),
    Case("connection closed after the server stored the message, on_ambiguous=fail", ImkitConnectionError, 1, 1,
         faults=[(Fault("close_after"), 1)], hook=FAIL, note="stored, but the client cannot know: not sent again"),
    Case("closed after storing, on_ambiguous=resend", None, 2, 2, [backoff(0.5, 1.0)],
         faults=[(Fault("close_after"), 1)], hook=RESEND, note="posted twice: the at-least-once trade-off"),
    Case("closed after storing, reconcile (default): read-back finds it", None, 1, 1,
         faults=[(Fault("close_after"), 1)], note="the stored message is the result: exactly once"),
    Case("closed before storing, reconcile (default): read-back proves it absent", None, 2, 1, [*SETTLE, backoff(0.5, 1.0)],
         faults=[(Fault("close_before"), 1)], note="read for 10 s (the settle window), then sent again once"),
    Case("no answer, stored late (read 3), reconcile (default)", None, 1, 1, [2.5, 2.5],
         faults=[(Fault("store_late", reads=3), 1)], note="found inside the settle window: exactly once"),
    Case("504 from a proxy, stored late (read 5), reconcile (default)", None, 1, 1, SETTLE,
         faults=[(Fault("store_late", status=504, reads=5), 1)], note="found by the last read of the window"),
    Case("no answer, stored late, deadline before the window ends", ImkitConnectionError, 1, 0, [2.5],
         faults=[(Fault("store_late", reads=9), 1)], hook={"deadline": 3},
         note="maybe_delivered=True: never sent again"),

    Case("closed after storing, reconcile, the room cannot be read", ImkitConnectionError, 1, 1, [backoff(0.1, 0.2)],
         faults=[(Fault("close_after"), 1)], read_faults=[(Fault.respond(500, ERROR_500), 2)],
         note="the ambiguous error, never a guess"),
    Case("read timeout, on_ambiguous=fail", ImkitConnectionError, 1, 1, faults=[(Fault("delay", delay=0.5), 1)],
         hook={"timeout": (5, 0.1), **FAIL}, note="the server stored it after the client gave up"),
    Case("slow first byte under the timeout", None, 1, 1, faults=[(Fault("delay", delay=0.2), 1)], hook={"timeout": (5, 5)}),
    Case("server trickles the answer past the deadline", ImkitConnectionError, 1, 1,
         faults=[(Fault("trickle", delay=0.02), 1)], hook={"deadline": 0.3}, note="cut off at the deadline; no time left to read back"),
    Case("malformed JSON", ImkitApiError, 1, 0, faults=[(Fault("malformed_json"), 1)]),
    Case("empty body", ImkitApiError, 1, 0, faults=[(Fault("empty"), 1)]),
    Case("200 with RC != 0", ImkitServerError, 1, 0, faults=[(Fault("rc_error", rc=500), 1)], note="never reported as success"),
    Case("401 invalid key", ImkitAuthenticationError, 1, 0, conn={"password": "wrong-key-123456"}, code="INVALID_API_KEY"),
    Case("401 missing key", ImkitAuthenticationError, 1, 0, code="MISSING_API_KEY",
         faults=[(Fault.respond(401, {"RC": 401, "RM": "Unauthorized", "error": {"code": "MISSING_API_KEY", "message": "IM-API-KEY header is required"}}), 1)]),
    Case("403", ImkitAuthenticationError, 1, 0, code="PERMISSION_DENIED",
         faults=[(Fault.respond(403, {"RC": 403, "RM": "Forbidden", "error": {"code": "PERMISSION_DENIED", "message": "no"}}), 1)]),
    Case("404 room", ImkitNotFoundError, 1, 0, send={"room": "no-such-room"}, code="ROOM_NOT_FOUND"),
    Case("404 sender", ImkitNotFoundError, 1, 0, send={"sender": "ghost"}, code="CLIENT_NOT_FOUND"),
    Case("400 missing parameter", ImkitBadRequestError, 1, 0, code="MISSING_PARAMETER",
         faults=[(Fault.respond(400, {"RC": 400, "RM": "Bad Request", "error": {"code": "MISSING_PARAMETER", "message": "Missing required parameter: message"}}), 1)]),
    Case("413 (a 2 MB message)", ImkitBadRequestError, 1, 0, send={"message": "x" * (2 * 1024 * 1024)}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_matrix(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    with ImkitSandbox(api_key=API_KEY, rooms=["ops"], users=["bot"]) as sandbox:
        conn = {"conn_type": "imkit", "host": sandbox.url, "password": API_KEY, **case.conn}
        if conn["host"] == "closed-port":
            with ImkitSandbox() as gone:
                conn["host"] = gone.url
        monkeypatch.setenv("AIRFLOW_CONN_IMKIT_DEFAULT", json.dumps(conn))
        for fault, times in case.faults:
            sandbox.inject("/messages", fault, times)
        for fault, times in case.read_faults:
            sandbox.inject(HISTORY, fault, times)
        error: Exception | None = None
        result = None
        fake = FakeTime(sleeps)
        with ImkitHook(sleep=fake.sleep, clock=fake.clock, **case.hook) as hook:
            try:
                result = hook.send_message(**{**SEND, **case.send})
            except Exception as exc:
                error = exc
    # After stop(): every handler thread has finished (a delayed store, a trickle's end).
    attempts = sandbox.request_counts().get("POST /messages", 0)
    requests_seen = sandbox.requests()
    stored = len(sandbox.received("ops"))

    if case.outcome is None:
        assert error is None, f"expected the message object, got {error!r}"
        assert isinstance(result, dict) and len(result["_id"]) == 24
    else:
        assert type(error) is case.outcome, f"expected {case.outcome.__name__}, got {error!r}"
        if case.code:
            assert isinstance(error, ImkitApiError) and error.code == case.code
        assert API_KEY not in str(error)
    assert attempts == case.attempts
    assert stored == case.stored
    assert len(sleeps) == len(case.waits), sleeps
    for wait, expected in zip(sleeps, case.waits, strict=True):
        low, high = expected if isinstance(expected, tuple) else (expected, expected)
        assert low <= wait <= high, (wait, expected)
    if isinstance(error, ImkitConnectionError):
        assert error.maybe_delivered is (case.name != "connection refused")
    if case.name.startswith("server trickles"):
        assert "deadline of 0.3 s reached" in str(error)
        assert requests_seen[0]["completed"] is False  # the client hung up mid-answer


def outcome_text(case: Case) -> str:
    if case.outcome is None:
        return "message object"
    return f"`{case.outcome.__name__}`" + (f" {case.code}" if case.code else "")


def waits_text(case: Case) -> str:
    texts = [f"{w[0]:g}-{w[1]:g} s" if isinstance(w, tuple) else f"{w:g} s" for w in case.waits]
    return ", ".join(texts) or "-"


def markdown_rows() -> list[str]:
    return [
        f"| {case.name} | {outcome_text(case)} | {case.attempts} | {case.stored} | {waits_text(case)} | {case.note} |"
        for case in CASES
    ]


def test_the_docs_list_every_case() -> None:
    docs = (ROOT / "docs" / "delivery.md").read_text()
    missing = [row for row in markdown_rows() if row not in docs]
    assert not missing, (
        "docs/delivery.md's fault table is stale; regenerate with python -m tests.integration.test_fault_matrix"
    )


if __name__ == "__main__":
    print("| case | outcome | attempts seen by the server | messages stored | retry waits | note |")
    print("|---|---|---|---|---|---|")
    print("\n".join(markdown_rows()))
