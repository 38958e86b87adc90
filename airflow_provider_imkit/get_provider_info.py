"""Provider metadata for Airflow's ProvidersManager.

Airflow imports this module on every CLI start: it must stay free of heavy imports
(no airflow, no requests), so it holds plain data only.
"""

from __future__ import annotations

# No `typing` import: a bare interpreter would pay ~8 ms for it (annotations are strings).
from airflow_provider_imkit import __version__

#: How the connection form looks: one source for get_provider_info (Airflow 3.2+, built
#: without importing the hook) and for ImkitHook.get_ui_field_behaviour (2.11 to 3.1).
UI_FIELD_BEHAVIOUR: dict[str, object] = {
    "hidden-fields": ["login", "schema", "port"],
    "relabeling": {"host": "Base URL", "password": "API key"},
    "placeholders": {
        "host": "https://<app>.imkit.io",
        "password": "platform API key (sent as the IM-API-KEY header)",
        "extra": '{"timeout": 30, "max_attempts": 3, "verify": true}',
    },
}

#: Extra fields of the connection form (stored in the connection's ``extra``).
CONN_FIELDS: dict[str, dict[str, object]] = {
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Connect and read timeout of each HTTP attempt. Default: 10 s connect, 30 s read.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "max_attempts": {
        "label": "Max attempts",
        "description": "HTTP attempts per call, the first included (retries only what was not delivered). "
        "Default 3.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
    },
    "retry_on_ambiguous": {
        "label": "Retry ambiguous failures",
        "description": "Also retry read timeouts and 500/502/504, after which the message may already be "
        "stored: can post twice. Default off.",
        "schema": {"type": ["boolean", "null"]},
    },
    "proxy": {
        "label": "Proxy URL",
        "description": "HTTP(S) proxy for requests to IMKIT, e.g. http://proxy.internal:3128.",
        "schema": {"type": ["string", "null"]},
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true (default), false (not recommended; logs a warning), or the path of a CA bundle "
        "for a self-hosted server.",
        "schema": {"type": ["string", "boolean", "null"]},
    },
}


def get_provider_info() -> dict[str, object]:
    """Return the provider's metadata (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-imkit",
        "name": "IMKIT",
        "description": "Send messages to `IMKIT <https://imkit.io>`__ chat rooms from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "IMKIT",
                "external-doc-url": "https://imkit.io",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "IMKIT", "python-modules": ["airflow_provider_imkit.hooks.imkit"]}],
        "operators": [
            {"integration-name": "IMKIT", "python-modules": ["airflow_provider_imkit.operators.imkit"]}
        ],
        "notifications": ["airflow_provider_imkit.notifications.imkit.ImkitNotifier"],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_imkit.hooks.imkit.ImkitHook",
                "connection-type": "imkit",
                "hook-name": "IMKIT",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
