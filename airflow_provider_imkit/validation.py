"""Checks on user input, run before any request is sent.

Each check raises :class:`ImkitValidationError` naming the field and what was wrong with
it. Values are described by type and length only where they might be secret or huge.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from airflow_provider_imkit.exceptions import ImkitValidationError

#: Longest value quoted back in an error message.
_QUOTE_LIMIT = 60


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > _QUOTE_LIMIT:
        text = text[: _QUOTE_LIMIT - 3] + "..."
    return f"{text} ({type(value).__name__})"


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def identifier(field: str, value: Any) -> str:
    """
    Check an id (room, sender, user, message type): a non-empty string, no control characters.

    Surrounding whitespace is a mistake (often from a template) and is rejected, not trimmed,
    so that the id sent is exactly the id given.
    """
    if not isinstance(value, str):
        raise ImkitValidationError(field, f"must be a string, got {_show(value)}")
    if not value.strip():
        raise ImkitValidationError(field, f"must be a non-empty string, got {value!r}")
    if value != value.strip():
        raise ImkitValidationError(field, f"must not start or end with whitespace, got {_show(value)}")
    if _has_control(value):
        raise ImkitValidationError(field, f"must not contain control characters, got {_show(value)}")
    return value


def text(field: str, value: Any) -> str:
    """Check message text: a string with at least one visible character (newlines allowed)."""
    if not isinstance(value, str):
        raise ImkitValidationError(field, f"must be a string, got {_show(value)}")
    if not value.strip():
        raise ImkitValidationError(field, f"must be a non-empty string, got {_show(value)}")
    return value


def optional_bool(field: str, value: Any) -> bool | None:
    """Check a flag: None (the server's default applies) or a real bool."""
    if value is None or isinstance(value, bool):
        return value
    raise ImkitValidationError(field, f"must be True, False or None, got {_show(value)}")


def user_ids(field: str, value: Any) -> list[str] | None:
    """
    Check a list of user ids: None, one id string, or an iterable of id strings.

    Order is kept and duplicates are dropped. An empty iterable means "none" (None).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return [identifier(field, value)]
    if isinstance(value, bytes | bytearray | dict) or not isinstance(value, Iterable):
        raise ImkitValidationError(
            field, f"must be a user id string or a list of user id strings, got {_show(value)}"
        )
    ids: list[str] = []
    for index, item in enumerate(value):
        checked = identifier(f"{field}[{index}]", item)
        if checked not in ids:
            ids.append(checked)
    return ids or None
