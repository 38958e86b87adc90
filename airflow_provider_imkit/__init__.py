"""Apache Airflow provider for the IMKIT chat platform."""

from __future__ import annotations

__version__ = "0.2.0"

#: The connection id the hook, operators and notifier use by default.
DEFAULT_CONN_ID = "imkit_default"
