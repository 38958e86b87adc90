"""Parse IMKIT's response envelope into a result, or one typed :class:`ImkitApiError`.

Success is HTTP 2xx with ``{"RC": 0, "RM": "OK", "result": ...}``. Errors come in two
documented shapes, which are both read here, as are bodies that are not JSON at all::

    {"RC": 401, "RM": "Unauthorized", "error": {"code": "INVALID_API_KEY", "message": "..."}}
    {"error": "RATE_LIMIT_EXCEEDED", "message": "...", "retryAfter": 60}
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.exceptions import (
    ImkitApiError,
    ImkitAuthenticationError,
    ImkitBadRequestError,
    ImkitNotFoundError,
    ImkitRateLimitError,
    ImkitServerError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: Longest server text kept in an error message.
MAX_SERVER_TEXT = 300

_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"\s+")


def error_class_for(status: int) -> type[ImkitApiError]:
    """Return the exception class for an HTTP status (or an envelope RC used as one)."""
    if status in (401, 403):
        return ImkitAuthenticationError
    if status == 404:
        return ImkitNotFoundError
    if status == 429:
        return ImkitRateLimitError
    if status in (400, 413, 422):
        return ImkitBadRequestError
    if 500 <= status <= 599:
        return ImkitServerError
    return ImkitApiError


def _seconds(value: Any) -> float | None:
    """Read a non-negative number of seconds from a JSON value, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def retry_after_from_header(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Read a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now())


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > MAX_SERVER_TEXT:
        text = text[: MAX_SERVER_TEXT - 3] + "..."
    return text or None


def _non_json_summary(content: bytes, content_type: str) -> str:
    """Describe a body that is not a JSON object, e.g. a proxy's HTML error page."""
    raw = content.decode("utf-8", errors="replace")
    if "html" in content_type.lower() or raw.lstrip().startswith("<"):
        raw = html.unescape(_TAGS.sub(" ", raw))
    snippet = _text(raw)
    kind = content_type.split(";")[0].strip() or "unknown content type"
    if not snippet:
        return f"empty response body ({kind})"
    return f"response is not a JSON object ({kind}, {len(content)} bytes): {snippet}"


def parse_response(
    *,
    method: str,
    path: str,
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    redact: Callable[[str], str] = lambda text: text,
    subject: dict[str, str] | None = None,
) -> Any:
    """
    Return the envelope's ``result`` for a successful response, else raise.

    :param method: HTTP method, for the error message.
    :param path: API path, for the error message.
    :param status_code: HTTP status of the response.
    :param headers: response headers (case-insensitive mapping preferred).
    :param content: raw response body.
    :param redact: applied to every server-provided text kept in an error, so that a server
        or proxy that echoes the request cannot put the API key into an exception.
    :param subject: what the request was about (room, sender, conn_id...), kept on the error.
    :raises ImkitApiError: (a subclass chosen by status) for anything but a valid success.
    """
    content_type = headers.get("Content-Type", "") or ""
    header_wait = retry_after_from_header(headers.get("Retry-After"))
    try:
        body: Any = json.loads(content.decode("utf-8")) if content.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = None

    if not isinstance(body, dict):
        cls = error_class_for(status_code)
        raise cls(
            method=method,
            path=path,
            status_code=status_code,
            message=redact(_non_json_summary(content, content_type)),
            retry_after=header_wait if status_code == 429 else None,
            subject=subject,
        )

    rc = body.get("RC")
    if isinstance(rc, bool) or not isinstance(rc, int | str | type(None)):
        rc = str(rc)
    rc_ok = rc is None or str(rc).strip() == "0"
    if 200 <= status_code <= 299 and rc_ok and "result" in body:
        return body["result"]

    error = body.get("error")
    nested: Mapping[str, Any] = error if isinstance(error, dict) else {}
    code = _text(nested.get("code")) if nested else _text(error)
    message = _text(nested.get("message")) or _text(body.get("message"))
    rm = _text(body.get("RM"))
    if not message and rm and rm.upper() != "OK":
        message = rm
    body_wait = _seconds(body.get("retryAfter", nested.get("retryAfter")))
    waits = [w for w in (header_wait, body_wait) if w is not None]

    if 200 <= status_code <= 299:
        if rc_ok:
            message = message or "response has no 'result'"
        # A 2xx carrying an error: classify by RC when it looks like an HTTP status.
        rc_number = int(rc) if rc is not None and str(rc).strip().lstrip("-").isdigit() else 0
        cls = error_class_for(rc_number) if 400 <= rc_number <= 599 else ImkitApiError
    else:
        cls = error_class_for(status_code)
    raise cls(
        method=method,
        path=path,
        status_code=status_code,
        rc=rc,
        rm=redact(rm) if rm else None,
        code=redact(code) if code else None,
        message=redact(message) if message else None,
        retry_after=max(waits) if waits and (status_code == 429 or cls is ImkitRateLimitError) else None,
        subject=subject,
    )
