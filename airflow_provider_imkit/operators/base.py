"""ImkitBaseOperator: what every IMKIT operator shares (connection, retry policy, the hook)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_imkit import DEFAULT_CONN_ID
from airflow_provider_imkit.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_imkit.client.retry import RetryPolicy
    from airflow_provider_imkit.hooks.imkit import ImkitHook
    from airflow_provider_imkit.operators.delivery import EarlierTry


class ImkitBaseOperator(BaseOperator):
    """
    Connection and HTTP settings shared by the IMKIT operators.

    :param imkit_conn_id: the Airflow connection of type ``imkit`` (default ``imkit_default``).
    :param timeout: seconds (or ``(connect, read)``) for each HTTP attempt; default from the
        connection (10 s connect, 30 s read).
    :param retry: a :class:`~airflow_provider_imkit.client.retry.RetryPolicy`, or an int (the number
        of HTTP attempts); default from the connection's extras (3 attempts, reconcile).
    """

    ui_color = "#4f8df7"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | tuple[float, float] | None = None,
        retry: RetryPolicy | int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.imkit_conn_id = imkit_conn_id
        self.timeout: Any = timeout
        self.retry = retry

    def http_timeout(self) -> float | tuple[float, float] | None:
        """Seconds (or ``(connect, read)``) per HTTP attempt: the ``timeout`` argument of the
        message operators (an operator whose ``timeout`` means something else overrides this)."""
        return self.timeout

    def get_hook(self) -> ImkitHook:
        """Build the hook for this task's connection and settings."""
        # Imported here, not at the top: DAG files import this module, and requests alone
        # would add ~30 ms to every parse of them.
        from airflow_provider_imkit.hooks.imkit import ImkitHook

        return ImkitHook(self.imkit_conn_id, timeout=self.http_timeout(), retry=self.retry)

    def deliver_message(
        self, message: Mapping[str, Any], *, earlier: EarlierTry | None = None, **options: Any
    ) -> dict[str, Any]:
        """Send one message (rendered parameters) with this task's connection and settings,
        exactly once across the task's tries: :func:`~airflow_provider_imkit.operators.delivery.deliver`."""
        from airflow_provider_imkit.operators.delivery import deliver

        return deliver(
            imkit_conn_id=self.imkit_conn_id,
            retry=self.retry,
            timeout=self.http_timeout(),
            message=message,
            earlier=earlier,
            **options,
        )


def is_templated(value: Any) -> bool:
    """Whether a value (or an item of a list or tuple) is a Jinja template, checked once rendered."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list | tuple):
        return any(is_templated(item) for item in value)
    return False


def task_link(context: Context) -> str | None:
    """
    The link to this task in Airflow's UI when Airflow knows its base URL (``[api] base_url``
    on Airflow 3, ``[webserver] base_url`` on 2), else None. The try number is left out, so
    every try of the task posts the same text.
    """
    section = "api" if AIRFLOW_V_3_0_PLUS else "webserver"
    base = conf.get(section, "base_url", fallback=None)
    if not base:
        return None
    ti: Any = context.get("ti") or context.get("task_instance")
    try:
        url = getattr(ti, "log_url", None)
    except Exception:
        url = None
    if (not isinstance(url, str) or not url) and AIRFLOW_V_3_0_PLUS:
        # Airflow 3.0's task instance has no log_url: the UI's task page, as 3.1+ builds it.
        try:
            mapped = f"/mapped/{ti.map_index}" if (ti.map_index or -1) >= 0 else ""
            url = f"{base.rstrip('/')}/dags/{ti.dag_id}/runs/{quote(ti.run_id)}/tasks/{ti.task_id}{mapped}"
        except AttributeError:
            return None
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "try_number"])
    return urlunsplit(parts._replace(query=query))
