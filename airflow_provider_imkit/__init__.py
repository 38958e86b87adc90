"""Apache Airflow provider for the IMKIT chat platform."""

from __future__ import annotations

__version__ = "0.1.0"
