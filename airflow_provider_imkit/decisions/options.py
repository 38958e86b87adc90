"""Checking an approval's arguments: its options, which of them approve, its approvers."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.client import validation
from airflow_provider_imkit.exceptions import ImkitValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence


DEFAULT_OPTIONS = ("Approve", "Reject")
DEFAULT_APPROVE_OPTIONS = ("Approve",)
#: Longest option text (a chat reply must be able to repeat it).
MAX_OPTION_CHARS = 100


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
