"""The ``[imkit]`` configuration of the deployment-wide alerts, read and checked once.

Pure: :func:`alerts_config` takes a ``get(key) -> str | None`` function (Airflow's ``conf``
in the plugin, a dict in tests) and returns the settings, None when the plugin is off, or
raises :class:`AlertsConfigError` naming the key and what is wrong.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from airflow_provider_imkit import DEFAULT_CONN_ID
from airflow_provider_imkit.client import validation
from airflow_provider_imkit.exceptions import ImkitValidationError
from airflow_provider_imkit.get_provider_info import ALERTS_OPTIONS as OPTIONS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

EVENTS = (
    "dag_run_failed",
    "dag_run_recovered",
    "import_error",
    "task_failed",
    "task_retry",
    "dag_run_success",
)
DEFAULT_EVENTS = OPTIONS["alerts_events"][0]


class AlertsConfigError(ValueError):
    """A bad ``[imkit]`` value: ``key`` names it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"[imkit] {key}: {problem}; deployment-wide IMKIT alerts are OFF")


@dataclass(frozen=True)
class AlertsConfig:
    room: str
    sender: str = "airflow"
    conn_id: str = DEFAULT_CONN_ID
    mentions: tuple[str, ...] = ()
    events: frozenset[str] = frozenset(DEFAULT_EVENTS.split(","))
    dag_ids: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    routes: tuple[tuple[str, str], ...] = ()
    repeat_interval: timedelta = timedelta(hours=1)
    queue_size: int = 1000
    flush_timeout: float = 10.0
    sweep_interval: float = 60.0
    sweep_lookback: float = 3600.0

    def wants(self, event: str, dag_id: str | None, tags: Iterable[str] = ()) -> bool:
        """Whether this event of this DAG is alerted (events, DAG id patterns, tags)."""
        if event not in self.events:
            return False
        if (
            dag_id is not None
            and self.dag_ids
            and not any(fnmatch.fnmatchcase(dag_id, p) for p in self.dag_ids)
        ):
            return False
        return not self.tags or bool(self.tags & set(tags)) or dag_id is None

    def room_for(self, dag_id: str | None, tags: Iterable[str] = ()) -> str:
        """The room of the first matching route (``tag:<tag>`` or ``dag:<glob>``), else ``room``."""
        tag_set = set(tags)
        for rule, room in self.routes:
            kind, _, pattern = rule.partition(":")
            if (kind == "tag" and pattern in tag_set) or (
                kind == "dag" and dag_id is not None and fnmatch.fnmatchcase(dag_id, pattern)
            ):
                return room
        return self.room


def _words(value: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in value.split(",") if word.strip())


def alerts_config(get: Callable[[str], str | None]) -> AlertsConfig | None:
    """Read the ``[imkit]`` alerts options; None when ``alerts_room`` is empty."""

    def option(key: str) -> str:
        value = get(key)
        return (OPTIONS[key][0] if value is None else str(value)).strip()

    room = option("alerts_room")
    if not room:
        return None
    try:
        room = validation.identifier("alerts_room", room)
        sender = validation.identifier("alerts_sender", option("alerts_sender"))
        mentions = tuple(validation.user_ids("alerts_mentions", option("alerts_mentions") or None) or ())
    except ImkitValidationError as exc:
        raise AlertsConfigError(exc.field, exc.problem) from None
    events = frozenset(_words(option("alerts_events")))
    unknown = sorted(events - set(EVENTS))
    if unknown:
        raise AlertsConfigError("alerts_events", f"unknown events {unknown}; known: {', '.join(EVENTS)}")
    return AlertsConfig(
        room=room,
        sender=sender,
        conn_id=option("alerts_conn_id") or DEFAULT_CONN_ID,
        mentions=mentions,
        events=events,
        dag_ids=_words(option("alerts_dag_ids")),
        tags=frozenset(_words(option("alerts_tags"))),
        routes=_routes(option("alerts_routes")),
        repeat_interval=timedelta(
            seconds=_number("alerts_repeat_interval", option("alerts_repeat_interval"))
        ),
        queue_size=int(_number("alerts_queue_size", option("alerts_queue_size"), minimum=1)),
        flush_timeout=_number("alerts_flush_timeout", option("alerts_flush_timeout")),
        sweep_interval=_number("alerts_sweep_interval", option("alerts_sweep_interval"), minimum=1),
        sweep_lookback=_number("alerts_sweep_lookback", option("alerts_sweep_lookback")),
    )


def _number(key: str, text: str, minimum: float = 0) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AlertsConfigError(key, f"must be a number, got {text!r}") from None
    if value < minimum:
        raise AlertsConfigError(key, f"must be at least {minimum:g}, got {text!r}")
    return value


def _routes(text: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    try:
        rules = json.loads(text)
    except ValueError as exc:
        raise AlertsConfigError("alerts_routes", f"is not valid JSON ({exc})") from None
    if not isinstance(rules, dict):
        raise AlertsConfigError(
            "alerts_routes", 'must be a JSON object such as {"tag:finance": "finance-alerts"}'
        )
    routes = []
    for rule, room in rules.items():
        kind, colon, pattern = str(rule).partition(":")
        if kind not in ("tag", "dag") or not colon or not pattern:
            raise AlertsConfigError(
                "alerts_routes", f"rule {rule!r} must look like 'tag:<tag>' or 'dag:<glob>'"
            )
        if not isinstance(room, str) or not room.strip():
            raise AlertsConfigError("alerts_routes", f"rule {rule!r} has an empty room")
        routes.append((str(rule), room.strip()))
    return tuple(routes)
