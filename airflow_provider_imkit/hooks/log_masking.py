"""Keep secrets carried inside Airflow 3's task SDK messages out of the logs, at every level.

On Airflow 3 the task SDK masks a connection's password when a task reads the connection: it
registers the value with the secrets masker and sends ``MaskSecret(value=<password>)`` to its
supervisor (``airflow/sdk/execution_time/context.py``, ``_mask_connection_secrets``). The
in-process supervisor of ``airflow dags test`` and ``dag.test()`` logs every request it is sent
at debug level, message object included (``InProcessSupervisorComms.send``:
``log.debug("Sending request", msg=msg)`` in ``airflow/sdk/execution_time/supervisor.py``,
3.0 to 3.3). Airflow's secrets masker redacts strings, dicts and lists in a log event but
passes any other object through, and the renderer then prints the pydantic model's repr: the
key in clear. (Real workers' supervisors log such requests with the body omitted.)

:func:`install` puts one structlog processor first in the chain: a pydantic model in a log
event whose fields hold a value the secrets masker hides is replaced by its redacted fields.
A ``MaskSecret`` request's value is always hidden (on 3.0 the SDK sends it before its own
masker learns it). Other models, and every other value, are left as they are. Airflow 2
logs no such objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import MutableMapping


def redact_models(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: show pydantic models carrying a masked value with that value hidden."""
    from pydantic import BaseModel

    for key, value in list(event_dict.items()):
        if isinstance(value, BaseModel):
            event_dict[key] = _redacted(value)
    return event_dict


def _redacted(model: Any) -> Any:
    try:
        from airflow.providers.common.compat.sdk import redact

        fields = model.model_dump(mode="json")
        hidden: Any = redact(fields)
        if type(model).__name__ == "MaskSecret" and "value" in hidden:
            # Its value is a secret by definition; Airflow 3.0 sends it before the local
            # masker knows it, so redaction alone misses the first one.
            hidden["value"] = "***"
        if hidden == fields:
            return model  # nothing secret in it: the model's own repr, as Airflow logs it
        body = ", ".join(f"{name}={value!r}" for name, value in hidden.items())
        return f"{type(model).__name__}({body})"
    except Exception:
        return f"{type(model).__name__}(<not shown: could not be redacted>)"


def install() -> None:
    """Put :func:`redact_models` first in structlog's processor chain (once per configuration).

    The chain is changed in place when it is a list: loggers already bound (such as the
    in-process supervisor's, cached on first use) share that list, so they are covered too.
    Called before the provider reads a connection, after Airflow has configured its logging.
    """
    import structlog

    processors = structlog.get_config()["processors"]
    if any(processor is redact_models for processor in processors):
        return
    if isinstance(processors, list):
        processors.insert(0, redact_models)
    else:
        structlog.configure(processors=[redact_models, *processors])
