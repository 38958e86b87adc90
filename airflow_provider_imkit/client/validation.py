"""Checks on user input, run before any request is sent.

Each check raises :class:`ImkitValidationError` naming the field and what was wrong with
it. Values are described by type and length only where they might be secret or huge.
"""

from __future__ import annotations

import ast
import json
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


#: What an id in a list field may not hold once the list is parsed (a sign of a wrong split).
_NOT_IN_LIST_IDS = re.compile(r"[\s,;\[\]\(\)'\"]")


def split_list_text(field: str, text: str) -> list[Any]:
    """Parse list text: ``'["a", "b"]'`` (JSON), ``"['a', 'b']"`` (a rendered Python list),
    ``"a,b"`` / ``"a; b"`` (as Airflow's EmailOperator reads ``to``), or one id."""
    stripped = text.strip()
    if stripped.startswith(("[", "(")) and stripped.endswith(("]", ")")):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            try:
                parsed = ast.literal_eval(stripped)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise ImkitValidationError(
                    field, f"looks like a list but cannot be parsed: {_show(text)}"
                ) from None
        if not isinstance(parsed, list | tuple):
            raise ImkitValidationError(field, f"must be a list of ids, got {_show(text)}")
        # In list text a number is how the id is spelt (a rendered [123, 456]).
        return [rendered_id(item) for item in parsed]
    return [part.strip() for part in re.split(r"[,;]", text) if part.strip()]


def user_ids(field: str, value: Any) -> list[str] | None:
    """
    Check a list of ids (mentions, rooms, receivers): None, a list or other iterable of id
    strings, or a string holding one id, ``"a,b"`` / ``"a;b"``, or the text of a JSON or
    Python list (what a template renders a list to).

    Order is kept and duplicates are dropped. Empty means "none" (None). An id that still
    holds whitespace, a comma, a semicolon, brackets or quotes after parsing is an error.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = split_list_text(field, value)
    if isinstance(value, bytes | bytearray | dict) or not isinstance(value, Iterable):
        raise ImkitValidationError(
            field, f"must be a user id string or a list of user id strings, got {_show(value)}"
        )
    ids: list[str] = []
    for index, item in enumerate(value):
        checked = identifier(f"{field}[{index}]", item)
        if _NOT_IN_LIST_IDS.search(checked):
            raise ImkitValidationError(
                f"{field}[{index}]",
                f"{checked!r} is not an id (whitespace, comma, semicolon, bracket or quote in it): "
                "give a list, or ids separated by commas",
            )
        if checked not in ids:
            ids.append(checked)
    return ids or None


#: A message's parameters by their Python names (``POST /messages``; IMKIT's names are in
#: :func:`message_body`): the one list the client, the send operator, the notifier and the
#: delivery step share.
MESSAGE_PARAMS = ("room", "sender", "message", "message_type", "push", "skip_total_badge", "mentions")


def message_params(source: Any, **values: Any) -> dict[str, Any]:
    """:data:`MESSAGE_PARAMS` read from ``source``'s attributes (an operator, a notifier),
    ``values`` taking precedence."""
    return {name: values[name] if name in values else getattr(source, name) for name in MESSAGE_PARAMS}


def message_body(
    room: Any,
    sender: Any,
    message: Any,
    message_type: Any = "text",
    push: Any = None,
    skip_total_badge: Any = None,
    mentions: Any = None,
) -> dict[str, Any]:
    """The checked ``POST /messages`` body, in IMKIT's field names; None fields are left out
    so that the server's defaults apply."""
    body: dict[str, Any] = {
        "room": identifier("room", room),
        "sender": identifier("sender", sender),
        "message": text("message", message),
        "messageType": identifier("message_type", message_type),
    }
    optional = {
        "push": optional_bool("push", push),
        "skipTotalBadge": optional_bool("skip_total_badge", skip_total_badge),
        "mentions": user_ids("mentions", mentions),
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


def batch_body(
    message: Any,
    rooms: Any,
    receivers: Any,
    values: Any,
    sender: Any = None,
    message_type: Any = "text",
    push: Any = None,
    skip_total_badge: Any = None,
) -> dict[str, Any]:
    """The checked ``POST /messages/batch`` body; None fields are left out."""
    body: dict[str, Any] = {
        "message": text("message", message),
        "messageType": identifier("message_type", message_type),
        "paras": batch_recipients(rooms, receivers, values),
    }
    optional = {
        "sender": None if sender is None else identifier("sender", sender),
        "push": optional_bool("push", push),
        "skipTotalBadge": optional_bool("skip_total_badge", skip_total_badge),
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


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


# -- values rendered by Airflow's templates (operators and notifier) ------------------------------


def rendered_text(value: Any) -> str | None:
    """
    A message rendered by a template, as text: numbers, bools, dates and Decimals as their
    text (native rendering returns them as objects), a dict or list as compact JSON text.

    :return: the text, or None when the value is None or blank (the caller decides).
    """
    if value is None:
        return None
    if isinstance(value, dict | list | tuple):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    elif not isinstance(value, str):
        value = str(value)
    return value if value.strip() else None


def rendered_id(value: Any) -> Any:
    """An id rendered by a template: a number (native rendering of ``"1234"``) as its text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def rendered_ids(value: Any) -> Any:
    """A list field rendered by a template: numbers among the ids as their text."""
    if isinstance(value, list | tuple):
        return [rendered_id(item) for item in value]
    return rendered_id(value)


def rendered_mapping(value: Any) -> Any:
    """A dict field rendered by a template as text (``"{'a': 1}"`` or JSON): the dict again."""
    if isinstance(value, str) and value.strip().startswith("{"):
        parsed = _literal(value.strip())
        return value if parsed is _UNPARSED else parsed
    return value


def rendered_message(field: str, value: Any) -> str:
    """A rendered message as text (:func:`rendered_text`); nothing to send is an error."""
    text = rendered_text(value)
    if text is None:
        raise ImkitValidationError(field, f"rendered to nothing (got {value!r}); nothing to send")
    return text


_UNPARSED = object()


def _literal(text: str) -> Any:
    """A JSON or Python literal (what a template renders a list or dict to), else _UNPARSED."""
    try:
        return json.loads(text)
    except ValueError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return _UNPARSED
