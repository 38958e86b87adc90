"""Scripting the sandbox from inside a running DAG (another process): its control API.

from airflow_provider_imkit.testing.control import arm_faults

@task
def arm() -> None:
    arm_faults({"path": "/messages", "kind": "close_after"})
"""

from __future__ import annotations

from typing import Any


def arm_faults(*faults: dict[str, Any], conn_id: str = "imkit_default") -> None:
    """
    Script the sandbox's next answers (``POST /_sandbox/faults``, same key as the API) through
    the connection a DAG's tasks use: each fault is ``{"path": ..., "kind": ..., "times": n,
    ...}`` as the README's fault table describes.
    """
    import requests
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    for fault in faults:
        answer = requests.post(
            f"{conn.host}/_sandbox/faults", json=fault, headers={"IM-API-KEY": conn.password}, timeout=10
        )
        answer.raise_for_status()
