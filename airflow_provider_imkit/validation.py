"""Checks on user input, run before any request is sent.

Each check raises :class:`ImkitValidationError` naming the field and what was wrong with
it. Values are described by type and length only where they might be secret or huge.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
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


_PLACEHOLDER = re.compile(r"\$[^$\s]+\$")


def batch_recipients(
    rooms: Any, receivers: Any, values: Mapping[str, Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """
    Build the ``paras`` of a batch send: ``{"room": id}`` / ``{"receiver": id}`` with values.

    :param rooms: None, a room id, or an iterable of room ids.
    :param receivers: None, a user id, or an iterable of user ids.
    :param values: per-recipient placeholder values keyed by room or user id; each key must
        look like ``$name$`` and each value be a string or a number.
    """
    room_ids = user_ids("rooms", rooms) or []
    receiver_ids = user_ids("receivers", receivers) or []
    if not room_ids and not receiver_ids:
        raise ImkitValidationError("rooms", "a batch needs at least one room or receiver")
    if values is not None and not isinstance(values, Mapping):
        raise ImkitValidationError("values", f"must be a dict of recipient id to values, got {_show(values)}")
    values = values or {}
    known = set(room_ids) | set(receiver_ids)
    unknown = [str(key) for key in values if key not in known]
    if unknown:
        raise ImkitValidationError("values", f"has values for ids that are not recipients: {unknown[:5]}")
    paras: list[dict[str, Any]] = []
    for kind, ids in (("room", room_ids), ("receiver", receiver_ids)):
        for recipient in ids:
            para: dict[str, Any] = {kind: recipient}
            recipient_values = values.get(recipient) or {}
            if not isinstance(recipient_values, Mapping):
                raise ImkitValidationError(
                    f"values[{recipient!r}]", f"must be a dict of placeholders, got {_show(recipient_values)}"
                )
            for key, value in recipient_values.items():
                field = f"values[{recipient!r}][{key!r}]"
                if not isinstance(key, str) or not _PLACEHOLDER.fullmatch(key):
                    raise ImkitValidationError(field, "placeholder keys look like '$name$'")
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise ImkitValidationError(field, f"must be a string or a number, got {_show(value)}")
                para[key] = str(value)
            paras.append(para)
    return paras
