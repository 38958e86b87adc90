"""Where a message watcher's cursor is kept between runs of its trigger.

Airflow 3.3+: in the watched asset's state store (``self.asset_state_store``, which the
triggerer injects into an asset watcher's trigger; one value per asset the trigger watches),
so a triggerer restart goes on from the last message fired. Also, on every version, in this
process: a trigger that is stopped and started again in the same triggerer
(its DAG re-parsed, the trigger re-assigned) goes on from there. Airflow 3.0-3.2 keep no
state for watchers: after a restart of the triggerer the watch starts from then on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from airflow_provider_imkit.rooms.match import Cursor

log = logging.getLogger(__name__)

#: Cursors of the watches run in this process, by :func:`cursor_key`.
_KEPT: dict[str, Cursor] = {}


def cursor_key(kwargs: dict[str, Any]) -> str:
    """The state-store key of one watcher: a digest of its serialized kwargs (connection, room,
    pattern, senders, types), so watchers with other arguments on the same asset keep theirs."""
    wanted = {k: kwargs.get(k) for k in ("imkit_conn_id", "room", "pattern", "senders", "message_types")}
    digest = hashlib.sha256(json.dumps(wanted, sort_keys=True, default=str).encode()).hexdigest()
    return f"imkit_message_cursor_{digest[:16]}"


def _accessors(store: Any) -> list[Any]:
    """One accessor per asset the trigger watches (the same trigger may watch several)."""
    found = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
    return found or [store]


async def load_cursor(store: Any, key: str, *, attempts: int = 3) -> tuple[Cursor | None, bool]:
    """The cursor kept for ``key``: the asset state store's (3.3+), else this process's; the
    newest of them when the trigger watches several assets. Also whether a kept value could not
    be read (the store failed ``attempts`` times, 1 s then 2 s apart): the caller must then not
    overwrite it. (None, False): nothing kept."""
    found: list[Cursor] = []
    unread = False
    if store is not None:
        for accessor in _accessors(store):
            for attempt in range(attempts):
                try:
                    cursor = Cursor.from_json(await accessor.aget(key))
                    break
                except Exception as exc:  # the store cannot be read now
                    log.warning("Could not read the watcher's cursor from the asset state store: %s", exc)
                    if attempt + 1 < attempts:
                        await asyncio.sleep(2**attempt)
            else:
                unread = True
                continue
            if cursor is not None:
                found.append(cursor)
    if not found and key in _KEPT:
        found.append(_KEPT[key])
    return max(found, key=lambda c: c.newest_ms, default=None), unread and not found


async def save_cursor(store: Any, key: str, cursor: Cursor) -> None:
    """Keep ``cursor`` in this process and, on 3.3+, in every watched asset's state store.
    A failed write is logged: the event still fires (after a restart it could fire again)."""
    _KEPT[key] = cursor
    if store is None:
        return
    for accessor in _accessors(store):
        try:
            await accessor.aset(key, cursor.to_json())
        except Exception as exc:
            log.warning("Could not keep the watcher's cursor in the asset state store: %s", exc)
