"""ImkitHook: an Airflow connection turned into an :class:`~airflow_provider_imkit.client.ImkitClient`."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_imkit import DEFAULT_CONN_ID, log_masking, validation
from airflow_provider_imkit.client import NOT_FOUND, ImkitClient
from airflow_provider_imkit.connection_form import (
    connection_form_widgets,
    connection_test_advice,
    ui_field_behaviour,
)
from airflow_provider_imkit.exceptions import ImkitError
from airflow_provider_imkit.read_back import READ_BACK_CLOCK_SKEW_MS, find_message, message_fields
from airflow_provider_imkit.retry import RetryPolicy
from airflow_provider_imkit.settings import (
    KNOWN_EXTRAS,
    ImkitSettings,
    cached_settings,
    parse_extra,
    unknown_extras,
)
from airflow_provider_imkit.version_compat import SDK_MASKS_CONNECTION_SECRETS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType


def path_segment(value: str) -> str:
    """Percent-encode an id for use as one URL path segment (``/`` and ``..`` included)."""
    return quote(value, safe="")


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
    :param retry: a :class:`~airflow_provider_imkit.retry.RetryPolicy`, or an int as the
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
        return ImkitClient(self.settings, log=self.log, sleep=self._sleep, clock=self._clock)

    def get_conn(self) -> Any:
        """Return this thread's pooled ``requests.Session``."""
        return self.client.session()

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

    # -- endpoints -------------------------------------------------------------------------------

    def send_message(
        self,
        *,
        room: str,
        sender: str,
        message: str,
        message_type: str = "text",
        push: bool | None = None,
        skip_total_badge: bool | None = None,
        mentions: str | Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """
        Send a message to a room (``POST /messages``) and return the stored message object.

        When an attempt may have been stored without an answer (read timeout, connection lost
        after sending, 500/502/504), the retry policy's ``on_ambiguous`` decides: with
        ``reconcile`` (default) the room is read back (``GET /rooms/{room}/messages/v3``) and
        the stored message returned if found, sent again only if proven absent.

        :param room: id of the room.
        :param sender: id of an existing user who sends the message.
        :param message: the message text (non-empty).
        :param message_type: ``text`` (default), ``announcement``, ``image`` or an
            app-defined type.
        :param push: send push notifications to the room's members; None leaves the server's
            default (true).
        :param skip_total_badge: do not count the message in members' badge totals; None
            leaves the server's default (false).
        :param mentions: user ids to notify as mentioned: a list, one id, ``"a,b"``/``"a;b"``,
            or the text of a JSON/Python list; duplicates are dropped.
        :return: the message object: ``_id``, ``room``, ``message``, ``messageType``,
            ``sender`` (an id, or a user object on some servers), ``messageTimeMS``...
        :raises ImkitValidationError: an argument is invalid; nothing was sent.
        :raises ImkitNotFoundError: no such room (``exc.room``) or sender (``exc.sender``).
        :raises ImkitError: any other failure, typed (see the README's error table).
        """
        body = validation.message_body(room, sender, message, message_type, push, skip_total_badge, mentions)
        since_ms = int(time.time() * 1000) - READ_BACK_CLOCK_SKEW_MS

        def read_back(until: float) -> Any:
            found = find_message(self.client, **message_fields(body), since_ms=since_ms, until=until)
            return NOT_FOUND if found is None else found

        result: dict[str, Any] = self.client.request(
            "POST",
            "/messages",
            json_body=body,
            expect="a message object",
            subject={"room": room, "sender": sender},
            reconcile=read_back,
        )
        self.log.info("IMKIT message %s sent to room %s", result.get("_id"), room)
        return result

    def find_message(
        self,
        *,
        room: str,
        sender: str,
        message: str,
        message_type: str = "text",
        mentions: str | Iterable[str] | None = None,
        since_ms: int,
        settled_after: float | None = None,
    ) -> dict[str, Any] | None:
        """
        Find a message in a room's history (``GET /rooms/{room}/messages/v3``): same sender,
        type, text and mentions, created at or after ``since_ms`` (ms since the epoch).

        :param settled_after: seconds since the epoch before which IMKIT may still be storing
            the message (the settle rule): while nothing is found the room is read again until
            a read starts at or after it. None: one read decides.
        :return: the newest such message as the room lists it, or None when proven absent.
        :raises ImkitReadBackError: the room holds more than 500 messages since ``since_ms``
            (absence cannot be proven).
        :raises ImkitError: the room could not be read.
        """
        body = validation.message_body(room, sender, message, message_type, None, None, mentions)
        return find_message(
            self.client, **message_fields(body), since_ms=since_ms, settled_after=settled_after
        )

    def send_batch(
        self,
        *,
        message: str,
        rooms: str | Iterable[str] | None = None,
        receivers: str | Iterable[str] | None = None,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        sender: str | None = None,
        message_type: str = "text",
        push: bool | None = None,
        skip_total_badge: bool | None = None,
    ) -> dict[str, Any]:
        """
        Send one message to many rooms and/or users in one request (``POST /messages/batch``).

        IMKIT queues the batch and delivers it shortly after; the result only says it was
        accepted. ``push`` defaults to **false** on this endpoint (true on :meth:`send_message`).
        A batch cannot be read back: after an ambiguous failure it is never sent again
        (unless the policy says ``resend``), and the error is raised.

        :param message: the text; ``$name$``-style placeholders are replaced per recipient.
        :param rooms: room ids to post to (list syntax as for ``mentions``).
        :param receivers: user ids to message directly (list syntax as for ``mentions``).
        :param values: per-recipient placeholder values, keyed by room or user id:
            ``{"team-a": {"$team$": "Analytics"}}``. Keys must look like ``$name$``.
        :param sender: id of the sending user; None lets the server choose (system).
        :param message_type: ``text`` (default) or another type.
        :param push: push-notify recipients; None leaves the server's default (false here).
        :param skip_total_badge: keep the message out of badge totals; None = server default.
        :return: ``{"batchID": ..., "count": ...}``.
        :raises ImkitValidationError: no recipient, a bad id, or a malformed placeholder.
        """
        body = validation.batch_body(
            message, rooms, receivers, values, sender, message_type, push, skip_total_badge
        )
        result: dict[str, Any] = self.client.request(
            "POST",
            "/messages/batch",
            json_body=body,
            expect="a batch result",
            subject={"sender": sender} if sender else None,
        )
        count = result.get("count", len(body["paras"]))
        self.log.info("IMKIT batch %s accepted for %s recipients", result.get("batchID"), count)
        return result

    def recall_message(self, room: str, message_id: str) -> dict[str, Any]:
        """
        Recall (retract) a sent message: ``POST /rooms/{room}/message`` with ``messageType: recall``.

        :param room: id of the room the message was sent to (percent-encoded in the path).
        :param message_id: the message's ``_id``, e.g. from a send task's XCom.
        :return: the recalled message (``message`` empty, ``messageType`` ``recall``).
        :raises ImkitNotFoundError: no such room or message (``exc.room``, ``exc.message_id``).
        """
        room = validation.identifier("room", room)
        message_id = validation.identifier("message_id", message_id)
        path = f"/rooms/{path_segment(room)}/message"
        body = {"_id": message_id, "messageType": "recall"}
        subject = {"room": room, "message_id": message_id}
        result: dict[str, Any] = self.client.request(
            "POST", path, json_body=body, expect="the recalled message", subject=subject
        )
        self.log.info("IMKIT message %s recalled in room %s", message_id, room)
        return result

    def upsert_user(
        self, user_id: str, nickname: str | None = None, avatar_url: str | None = None
    ) -> dict[str, Any]:
        """
        Create or update a user (``POST /admin/clients``), e.g. the bot that sends alerts.

        No access token is requested (``issueAccessToken`` is never sent); should a server
        return one anyway, it is dropped from the result.

        :param user_id: the user's ``_id``.
        :param nickname: display name; None leaves it as it is.
        :param avatar_url: avatar image URL; None leaves it as it is.
        :return: the user object, without any token.
        """
        body: dict[str, Any] = {"_id": validation.identifier("user_id", user_id)}
        if nickname is not None:
            body["nickname"] = validation.text("nickname", nickname)
        if avatar_url is not None:
            body["avatarUrl"] = validation.text("avatar_url", avatar_url)
        result: dict[str, Any] = self.client.request(
            "POST", "/admin/clients", json_body=body, expect="a user object", subject={"user_id": user_id}
        )
        self.log.info("IMKIT user %s created or updated", user_id)
        return {key: value for key, value in result.items() if "token" not in key.lower()}

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the connection with a read-only call (``GET /admin/connection-count``).

        Never sends a message. Used by Airflow's "Test" button and ``airflow connections test``.
        Extras with names the hook does not know (typos such as ``timout``) fail the test.

        :return: ``(True, text)`` when IMKIT answered, else ``(False, what to fix)``.
        """
        try:
            unknown = unknown_extras(self.extras)
            if unknown:
                return False, (
                    f"Connection {self.imkit_conn_id!r} has unknown extras {unknown} (misspelt?); "
                    f"known extras: {', '.join(KNOWN_EXTRAS)}."
                )
            url = self.settings.base_url
            result = self.client.request("GET", "/admin/connection-count", retry=RetryPolicy(max_attempts=1))
        except ImkitError as exc:
            return False, connection_test_advice(self.imkit_conn_id, exc)
        count = result.get("count")
        detail = f" ({count} client connections open)" if isinstance(count, int) else ""
        return True, f"Connected to IMKIT at {url}: the API key was accepted{detail}."
