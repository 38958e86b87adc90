"""IMKIT's Platform API as a library, with no Airflow in it (importable where Airflow is not).

:class:`ImkitClient` holds the endpoint methods (``send_message`` with the exactly-once
read-back, ``send_batch``, ``recall_message``, ``upsert_user``, ``room_messages``) over
:class:`~airflow_provider_imkit.client.base.BaseClient`, the one request path. The Airflow
hook (:class:`~airflow_provider_imkit.hooks.imkit.ImkitHook`) turns a connection into one.

Modules: :mod:`.base` (the request path), :mod:`.imkit` (the endpoints), :mod:`.settings`
(checked settings), :mod:`.retry` (the retry policy), :mod:`.validation` (argument checks
and wire bodies), :mod:`.envelope` (IMKIT's answers and errors), :mod:`.transport`
(deadline-bound sockets, transport errors), :mod:`.read_back` (reading a room back).

The names below are imported on first use (PEP 562): DAG files import the light checks
(:mod:`.validation`) without loading requests. ``DEFAULT_SLEEP`` and ``DEFAULT_CLOCK`` are
read here; to replace them for every client, patch ``airflow_provider_imkit.client.base``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_imkit.client.base import DEFAULT_CLOCK, DEFAULT_SLEEP, USER_AGENT, BaseClient
    from airflow_provider_imkit.client.imkit import ImkitClient
    from airflow_provider_imkit.client.read_back import (
        NOT_FOUND,
        UNSETTLED,
        NotFound,
        Unsettled,
        no_answer_from_server,
    )
    from airflow_provider_imkit.client.retry import RetryPolicy
    from airflow_provider_imkit.client.settings import ImkitSettings

_WHERE = {
    "NOT_FOUND": "read_back",
    "UNSETTLED": "read_back",
    "USER_AGENT": "base",
    "BaseClient": "base",
    "DEFAULT_SLEEP": "base",
    "DEFAULT_CLOCK": "base",
    "NotFound": "read_back",
    "Unsettled": "read_back",
    "no_answer_from_server": "read_back",
    "ImkitClient": "imkit",
    "RetryPolicy": "retry",
    "ImkitSettings": "settings",
}

__all__ = [
    "DEFAULT_CLOCK",
    "DEFAULT_SLEEP",
    "NOT_FOUND",
    "UNSETTLED",
    "USER_AGENT",
    "BaseClient",
    "ImkitClient",
    "ImkitSettings",
    "NotFound",
    "RetryPolicy",
    "Unsettled",
    "no_answer_from_server",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
