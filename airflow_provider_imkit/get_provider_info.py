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
        "extra": '{"timeout": 30, "max_attempts": 3}',
        # The extras' own fields (Airflow 2.11 to 3.1 key them by name too): the defaults.
        "timeout": "10 connect, 30 read",
        "max_attempts": "3",
        "read_back_settle": "10",
        "proxy": "http://proxy.internal:3128",
        "ca_bundle": "/etc/ssl/certs/imkit-ca.pem",
    },
}

#: Every connection extra the hook reads, in one table: the connection form's fields (the
#: ``form`` ones: ``conn-fields`` on Airflow 3.2+, widgets built from the same entries on
#: 2.11 to 3.1), the settings parser, and the check for unknown (misspelt) extras.
#: Nothing else in ``extra`` is used, and no extra is ever sent to the server.
EXTRAS: dict[str, dict[str, object]] = {
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Connect and read timeout of each HTTP attempt. Default: 10 s connect, 30 s read.",
        "schema": {"type": ["number", "null"], "minimum": 0},
        "form": True,
    },
    "connect_timeout": {
        "label": "Connect timeout (seconds)",
        "description": "Connect timeout of each HTTP attempt (overrides timeout). Default 10.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "read_timeout": {
        "label": "Read timeout (seconds)",
        "description": "Read timeout of each HTTP attempt (overrides timeout). Default 30.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "deadline": {
        "label": "Deadline (seconds)",
        "description": "The longest one call may take in all, retries and waits included. Default 120.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "max_attempts": {
        "label": "Max attempts",
        "description": "HTTP attempts per call, the first included (retries only what was not delivered). "
        "Default 3.",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 100, "default": 3},
        "form": True,
    },
    "backoff": {
        "label": "Backoff (seconds)",
        "description": "Wait before the first retry, doubled for each further one. Default 1.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "max_backoff": {
        "label": "Max backoff (seconds)",
        "description": "Cap of one backoff wait. Default 10.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "max_retry_after": {
        "label": "Max Retry-After (seconds)",
        "description": "The longest wait a 429 may ask for; a longer one fails at once. Default 60.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "on_ambiguous": {
        "label": "On ambiguous failures",
        "description": "reconcile (default: read the room back, send again only if the message is "
        "absent), fail (never send again) or resend (at-least-once: can post twice).",
        # No null in the enum: the form would offer (and pre-select) a literal "null". No default
        # either: an empty choice is saved as null, which reads as reconcile, and leaves an older
        # connection's retry_on_ambiguous in force.
        "schema": {"type": ["string", "null"], "enum": ["reconcile", "fail", "resend"]},
        "form": True,
    },
    "read_back_settle": {
        "label": "Read-back settle window (seconds)",
        "description": "After a send got no answer (read timeout, lost connection, 502/504), IMKIT may "
        "still store it: the message counts as absent (and is sent again) only if a read-back this "
        "long after the failure does not find it. Default 10; 0 trusts the first read-back.",
        "schema": {"type": ["number", "null"], "minimum": 0, "maximum": 3600, "default": 10},
        "form": True,
    },
    "retry_on_ambiguous": {
        "label": "Resend ambiguous failures",
        "description": "Older spelling of on_ambiguous=resend (true), read when on_ambiguous is unset; "
        "not in the form, which sets on_ambiguous.",
        "schema": {"type": ["boolean", "null"]},
    },
    "proxy": {
        "label": "Proxy URL",
        "description": "HTTP(S) proxy for requests to IMKIT, e.g. http://proxy.internal:3128. Empty: "
        "the usual HTTPS_PROXY/NO_PROXY variables apply.",
        "schema": {"type": ["string", "null"], "examples": ["http://proxy.internal:3128"]},
        "form": True,
    },
    "verify": {
        "label": "Verify TLS certificates",
        "description": "On by default. Off is not recommended (it logs a warning). In extra JSON a CA "
        "bundle's path is accepted here too.",
        "schema": {"type": ["boolean", "null"], "default": True},
        "form": True,
    },
    "ca_bundle": {
        "label": "CA bundle path",
        "description": "For a self-hosted server whose certificate a private authority signed: the path "
        "of the CA bundle (PEM) on every Airflow machine. Empty: the system's and certifi's CAs.",
        "schema": {"type": ["string", "null"], "examples": ["/etc/ssl/certs/imkit-ca.pem"]},
        "form": True,
    },
}

#: The connection form's extra fields (``conn-fields``), taken from :data:`EXTRAS`.
CONN_FIELDS: dict[str, dict[str, object]] = {
    name: {key: value for key, value in spec.items() if key != "form"}
    for name, spec in EXTRAS.items()
    if spec.get("form")
}


#: The ``[imkit]`` section (deployment-wide alerts): option -> (default, type, example,
#: description), in the order ``airflow config list`` shows them; the type and example are
#: what Airflow's config reference shows. airflow_provider_imkit.plugins.config reads them.
ALERTS_OPTIONS: dict[str, tuple[str, str, str, str]] = {
    "alerts_room": (
        "",
        "string",
        "ops-alerts",
        "The IMKIT room for deployment-wide alerts. Empty (the default) turns the alerts off.",
    ),
    "alerts_sender": ("airflow", "string", "airflow-bot", "The IMKIT user id that sends the alerts."),
    "alerts_conn_id": (
        "imkit_default",
        "string",
        "imkit_default",
        "The IMKIT connection the alerts are sent with.",
    ),
    "alerts_mentions": (
        "",
        "string",
        "alice,bob",
        "User ids to mention in every alert: 'a,b', 'a;b' or a JSON list.",
    ),
    "alerts_events": (
        "dag_run_failed,dag_run_recovered,import_error",
        "string",
        "dag_run_failed,dag_run_recovered,import_error,task_retry",
        "Comma-separated events to alert on: dag_run_failed, dag_run_recovered, import_error, "
        "task_failed, task_retry, dag_run_success.",
    ),
    "alerts_dag_ids": (
        "",
        "string",
        "etl_*,billing_*",
        "Only DAGs whose id matches one of these comma-separated glob patterns (empty: all).",
    ),
    "alerts_tags": (
        "",
        "string",
        "critical,finance",
        "Only DAGs with one of these comma-separated tags (empty: all).",
    ),
    "alerts_routes": (
        "",
        "string",
        '{"tag:finance": "finance-alerts", "dag:etl_*": "etl-room"}',
        'JSON routing rules, first match wins, else alerts_room: {"tag:finance": "finance-alerts", '
        '"dag:etl_*": "etl-room"}.',
    ),
    "alerts_repeat_interval": (
        "3600",
        "integer",
        "7200",
        "Seconds between two 'still failing' notices while a DAG keeps failing; the first failure "
        "alerts in full.",
    ),
    "alerts_queue_size": (
        "1000",
        "integer",
        "5000",
        "Alerts waiting to be sent at most; beyond it new ones are dropped and counted.",
    ),
    "alerts_flush_timeout": (
        "10",
        "float",
        "30",
        "Seconds a stopping component waits for its queued alerts to be sent.",
    ),
    "alerts_sweep_interval": (
        "60",
        "integer",
        "120",
        "Seconds between two sweeps of each scheduler for run alerts that no process decided or sent "
        "(a process that died in between); the first sweep runs when the scheduler starts.",
    ),
    "alerts_sweep_lookback": (
        "3600",
        "integer",
        "86400",
        "How far back (seconds) a sweep looks for finished runs whose alert was never decided; runs "
        "that ended earlier, or before the plugin was first on, are left alone.",
    ),
}


#: The ``[imkit]`` options of the triggerer's room readers (approvals): same form as
#: :data:`ALERTS_OPTIONS`; airflow_provider_imkit.triggers.imkit reads them.
READER_OPTIONS: dict[str, tuple[str, str, str, str]] = {
    "approval_reads_per_minute": (
        "300",
        "integer",
        "200",
        "Room reads per minute per IMKIT connection in each triggerer, shared by every approval "
        "wait, message trigger (asset watcher) and deferred message sensor: one read per room "
        "per poll interval, stretched evenly when the rooms want more "
        "(worst case: rooms / this many minutes between two reads of a room). IMKIT allows "
        "1,000 requests per minute per API key, shared with the deployment's sends and alerts.",
    ),
}

#: Which version added each ``[imkit]`` option.
OPTION_VERSIONS: dict[str, str] = {
    **dict.fromkeys(ALERTS_OPTIONS, "0.2.0"),
    **dict.fromkeys(READER_OPTIONS, "0.3.0"),
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
            {
                "integration-name": "IMKIT",
                "python-modules": [
                    "airflow_provider_imkit.operators.imkit",
                    "airflow_provider_imkit.operators.approval",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "IMKIT", "python-modules": ["airflow_provider_imkit.sensors.imkit"]}
        ],
        "triggers": [
            {"integration-name": "IMKIT", "python-modules": ["airflow_provider_imkit.triggers.imkit"]}
        ],
        "notifications": ["airflow_provider_imkit.notifications.imkit.ImkitNotifier"],
        "plugins": [
            {
                "name": "imkit_alerts",
                "plugin-class": "airflow_provider_imkit.plugins.alerts.ImkitAlertsPlugin",
            }
        ],
        "config": {
            "imkit": {
                "description": "Deployment-wide IMKIT alerts (the imkit_alerts plugin) and the "
                "triggerer's room reads (approvals, message triggers and sensors).",
                "options": {
                    key: {
                        "description": description,
                        "version_added": OPTION_VERSIONS[key],
                        "type": kind,
                        "example": example,
                        "default": default,
                    }
                    for key, (default, kind, example, description) in {
                        **ALERTS_OPTIONS,
                        **READER_OPTIONS,
                    }.items()
                },
            }
        },
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
