"""ImkitHook: an Airflow connection turned into an :class:`~airflow_provider_imkit.client.ImkitClient`."""

from __future__ import annotations

import functools
from functools import cached_property
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_imkit import DEFAULT_CONN_ID
from airflow_provider_imkit.client.imkit import ImkitClient, path_segment  # noqa: F401  (0.2.0 had it here)
from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.client.settings import (
    KNOWN_EXTRAS,
    ImkitSettings,
    cached_settings,
    parse_extra,
    unknown_extras,
)
from airflow_provider_imkit.exceptions import ImkitError
from airflow_provider_imkit.hooks import log_masking
from airflow_provider_imkit.hooks.connection_form import (
    connection_form_widgets,
    connection_test_advice,
    ui_field_behaviour,
)
from airflow_provider_imkit.version_compat import SDK_MASKS_CONNECTION_SECRETS

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType


P = ParamSpec("P")
R = TypeVar("R")


def _delegate(method: Callable[Concatenate[ImkitClient, P], R]) -> Callable[Concatenate[ImkitHook, P], R]:
    """A hook method that calls the client's method of the same name (signature and docs kept)."""
    name = method.__name__

    @functools.wraps(method)
    def call(hook: ImkitHook, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = getattr(hook.client, name)(*args, **kwargs)
        return result

    return call


class ImkitHook(BaseHook):
    """
    Interact with IMKIT's Platform API.

    The connection's host is the Base URL (``https://<app>.imkit.io``, or any self-hosted
    server; a bare host gets https unless the connection type is ``http``) and its password
    is the platform API key, sent as the ``IM-API-KEY`` header. Every call goes through the
    client's one request path, which owns timeouts, retries and error mapping. One hook may
    be shared by several threads.

    :param imkit_conn_id: Airflow connection id of type ``imkit``.
    :param timeout: seconds, a number for both or a ``(connect, read)`` pair; overrides the
        connection's ``timeout`` extras (default 10 s connect, 30 s read).
    :param deadline: seconds one call may take in all (connects, reads, retries and waits
        included), whatever the server does; overrides the ``deadline`` extra (default 120).
    :param retry: a :class:`~airflow_provider_imkit.client.retry.RetryPolicy`, or an int as the
        shortcut for ``max_attempts``; replaces the connection's retry extras. Default: the
        extras, else 3 attempts with ``on_ambiguous="reconcile"``.
    :param sleep: the function used to wait between attempts and read-backs (default
        ``time.sleep``; tests inject a fake one).
    :param clock: the time in seconds since the epoch (default ``time.time``), by which the
        read-back's settle window is measured (tests inject one that their ``sleep`` moves on).
    """

    conn_name_attr = "imkit_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "imkit"
    hook_name = "IMKIT"

    def __init__(
        self,
        imkit_conn_id: str = default_conn_name,
        *,
        timeout: float | tuple[float, float] | None = None,
        deadline: float | None = None,
        retry: RetryPolicy | int | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.imkit_conn_id = imkit_conn_id
        # Hashable (the settings are cached per connection): a [connect, read] list is a pair.
        self._timeout = tuple(timeout) if isinstance(timeout, list) else timeout
        self._deadline = deadline
        self._retry = RetryPolicy.coerce(retry)
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra connection form fields for Airflow 2.11 to 3.1 (3.2+ reads ``conn-fields``)."""
        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow 2.11 to 3.1 (3.2+ reads get_provider_info)."""
        return ui_field_behaviour()

    # -- connection -> settings -> client -------------------------------------------------------

    @cached_property
    def extras(self) -> dict[str, Any]:
        """The connection's extras (read once)."""
        return parse_extra(self.imkit_conn_id, self._connection.extra)

    @cached_property
    def _connection(self) -> Any:
        if SDK_MASKS_CONNECTION_SECRETS:
            # The SDK sends the password to its supervisor while fetching; keep it out of the
            # debug line ``airflow dags test`` writes for that message (see log_masking).
            log_masking.install()
        conn = self.get_connection(self.imkit_conn_id)
        if conn.password and not SDK_MASKS_CONNECTION_SECRETS:
            # Airflow 2 masks the password itself too; the SDK of Airflow 3 does when it fetches
            # the connection, and its mask_secret would send the value to the supervisor's log.
            from airflow.providers.common.compat.sdk import mask_secret

            mask_secret(conn.password)
        return conn

    @cached_property
    def settings(self) -> ImkitSettings:
        """The connection read once: base URL, API key, timeouts, TLS, proxy and retry policy."""
        conn = self._connection
        unknown = unknown_extras(self.extras)
        if unknown:
            self.log.warning("IMKIT connection %r: ignoring unknown extras %s", self.imkit_conn_id, unknown)
        fields = (conn.host, conn.password, conn.schema, conn.port, conn.conn_type, conn.extra)
        return cached_settings(self.imkit_conn_id, fields, self._timeout, self._deadline, self._retry)

    @cached_property
    def client(self) -> ImkitClient:
        """The client for this connection (pooled sessions, one per thread)."""
        return ImkitClient.from_settings(self.settings, log=self.log, sleep=self._sleep, clock=self._clock)

    def get_conn(self) -> ImkitClient:
        """Return the :class:`~airflow_provider_imkit.client.ImkitClient` for this connection."""
        return self.client

    def close(self) -> None:
        """Close every pooled connection this hook opened (in any thread)."""
        if "client" in self.__dict__:
            self.client.close()

    def __enter__(self) -> ImkitHook:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one API call and return its ``result``: see :meth:`ImkitClient.request`."""
        return self.client.request(method, path, **kwargs)

    # -- endpoints: the client's methods, same signatures and docs --------------------------

    send_message = _delegate(ImkitClient.send_message)
    find_message = _delegate(ImkitClient.find_message)
    room_messages = _delegate(ImkitClient.room_messages)
    send_batch = _delegate(ImkitClient.send_batch)
    recall_message = _delegate(ImkitClient.recall_message)
    upsert_user = _delegate(ImkitClient.upsert_user)

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the connection with a read-only call (``GET /admin/connection-count``).

        Never sends a message. Used by Airflow's "Test" button and ``airflow connections test``.
        Extras with names the hook does not know (typos such as ``timout``) fail the test.

        :return: ``(True, text)`` when IMKIT answered, else ``(False, what to fix)``.
        """
        url = None
        try:
            unknown = unknown_extras(self.extras)
            if unknown:
                return False, (
                    f"Connection {self.imkit_conn_id!r} has unknown extras {unknown} (misspelt?); "
                    f"known extras: {', '.join(KNOWN_EXTRAS)}."
                )
            url = self.settings.base_url
            result = self.client.connection_count()
        except ImkitError as exc:
            return False, connection_test_advice(self.imkit_conn_id, exc, url)
        count = result.get("count")
        detail = f" ({count} client connections open)" if isinstance(count, int) else ""
        return True, f"Connected to IMKIT at {url}: the API key was accepted{detail}."
