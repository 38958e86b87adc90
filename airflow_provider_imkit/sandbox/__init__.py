"""A local IMKIT-compatible server for demos, tests and offline DAG development.

from airflow_provider_imkit.sandbox import Fault, ImkitSandbox

Modules: ``server`` (ImkitSandbox, the socket handler), ``pipeline`` (the one request path:
auth -> record -> fault -> rate limit -> route, and the control API), ``app`` (endpoints),
``store`` (users, rooms, messages), ``faults`` (each fault kind, described and done),
``answers`` (the envelope), ``inbox`` (the HTML page). Test helpers that use it (the pytest
fixture, DAG runners) are in :mod:`airflow_provider_imkit.testing`. It imports neither
Airflow nor the hook: it is an independent second reading of the API docs.
"""

from __future__ import annotations

from airflow_provider_imkit.sandbox.faults import FAULT_KINDS, Fault
from airflow_provider_imkit.sandbox.server import DEFAULT_API_KEY, ImkitSandbox

__all__ = ["DEFAULT_API_KEY", "FAULT_KINDS", "Fault", "ImkitSandbox"]
