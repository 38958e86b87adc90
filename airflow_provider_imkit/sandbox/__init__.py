"""A local IMKIT-compatible server for demos, tests and offline DAG development.

from airflow_provider_imkit.sandbox import Fault, ImkitSandbox
"""

from __future__ import annotations

from airflow_provider_imkit.sandbox.faults import FAULT_KINDS, Fault
from airflow_provider_imkit.sandbox.server import DEFAULT_API_KEY, ImkitSandbox

__all__ = ["DEFAULT_API_KEY", "FAULT_KINDS", "Fault", "ImkitSandbox"]
