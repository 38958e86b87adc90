"""The ``airflow.plugins`` entry point of the ``imkit_alerts`` plugin.

The plugin is declared in the provider info (``plugins``), but Airflow loads providers'
plugins only with ``[core] lazy_discover_providers = False``; by default (lazy) it loads
entry points alone. Found both ways, Airflow 3.3 reports the second as a plugin import error
("already registered"). So this entry point gives the plugin only when the provider info
is not read for plugins; otherwise it gives nothing, which Airflow skips without a word.
"""

from __future__ import annotations

from airflow.configuration import conf

from airflow_provider_imkit.plugins.alerts import ImkitAlertsPlugin as _ImkitAlertsPlugin

#: The plugin class when Airflow discovers providers lazily (its default), else None.
ImkitAlertsPlugin: type[_ImkitAlertsPlugin] | None = (
    _ImkitAlertsPlugin if conf.getboolean("core", "lazy_discover_providers", fallback=True) else None
)
