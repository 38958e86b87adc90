"""ImkitClient: IMKIT's Platform API endpoints, as methods over the one request path.

As slack_sdk's ``WebClient`` over ``BaseClient.api_call``: each endpoint method checks its
arguments, builds the body (:mod:`.validation`), calls :meth:`BaseClient.request` and
returns the result. Usable without Airflow::

    from airflow_provider_imkit.client import ImkitClient

    with ImkitClient("https://app.imkit.io", api_key) as client:
        message = client.send_message(room="data-alerts", sender="airflow-bot", message="done")
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_imkit.client import validation
from airflow_provider_imkit.client.base import NOT_FOUND, BaseClient
from airflow_provider_imkit.client.read_back import (
    READ_BACK_CLOCK_SKEW_MS,
    READ_BACK_PAGES,
    find_message,
    message_fields,
    remember_own_post,
    room_messages,
)
from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.client.settings import ImkitSettings, settings_from

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = ["ImkitClient", "path_segment"]


def path_segment(value: str) -> str:
    """Percent-encode an id for use as one URL path segment (``/`` and ``..`` included)."""
    return quote(value, safe="")


class ImkitClient(BaseClient):
    """
    IMKIT's Platform API: a pooled, retrying, deadline-bound client, with no Airflow in it.

    One client may be shared by several threads (each gets its own pooled session); close
    it (or use it as a context manager) to close its connections.

    :param base_url: the API's base URL, ``https://<app>.imkit.io`` (a bare host gets https);
        or, as in 0.2.0, checked :class:`~airflow_provider_imkit.client.settings.ImkitSettings`
        (then without ``api_key`` and the settings' keywords).
    :param api_key: the platform API key, sent as the ``IM-API-KEY`` header; never logged.
    :param timeout: seconds per HTTP attempt, a number for both or a ``(connect, read)``
        pair; default 10 s connect, 30 s read.
    :param deadline: seconds one call may take in all (connects, reads, retries and waits
        included); default 120.
    :param retry: a :class:`~airflow_provider_imkit.client.retry.RetryPolicy`, or an int as
        the shortcut for ``max_attempts``; default 3 attempts with ``on_ambiguous="reconcile"``.
    :param verify: TLS verification: True (default), False, or the path of a CA bundle.
    :param proxy: an HTTP(S) proxy URL for both schemes; None (default) takes the usual
        ``*_proxy`` environment variables.
    :param name: what errors call the client (default ``"imkit"``); the hook passes the
        Airflow connection id.
    :param log: a ``logging.Logger``-like object (default: this package's logger).
    :param sleep: the function used to wait between attempts and read-backs (default
        ``time.sleep``; tests inject a fake one).
    :param clock: the time in seconds since the epoch (default ``time.time``), by which the
        read-back's settle window is measured.
    :raises ImkitConfigurationError: an unusable base URL, API key, timeout or deadline.
    """

    def __init__(
        self,
        base_url: str | ImkitSettings,
        api_key: str | None = None,
        *,
        timeout: float | tuple[float, float] | None = None,
        deadline: float | None = None,
        retry: RetryPolicy | int | None = None,
        verify: bool | str = True,
        proxy: str | None = None,
        name: str = "imkit",
        log: Any = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if isinstance(base_url, ImkitSettings):  # the 0.2.0 form: ImkitClient(settings)
            if api_key is not None:
                raise TypeError("ImkitClient(settings) takes no api_key: the settings hold it")
            super().__init__(base_url, log=log, sleep=sleep, clock=clock)
            return
        settings = settings_from(
            name,
            host=base_url,
            password=api_key,
            extras={"verify": verify, "proxy": proxy},
            timeout=tuple(timeout) if isinstance(timeout, list) else timeout,
            deadline=deadline,
            retry=RetryPolicy.coerce(retry),
        )
        super().__init__(settings, log=log, sleep=sleep, clock=clock)

    @classmethod
    def from_settings(
        cls,
        settings: ImkitSettings,
        *,
        log: Any = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> ImkitClient:
        """A client for settings already checked (the hook's, read from a connection)."""
        client = cls.__new__(cls)
        BaseClient.__init__(client, settings, log=log, sleep=sleep, clock=clock)
        return client

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
        the stored message returned if found, sent again only if proven absent; after a failure
        with no answer from IMKIT itself absence counts only from a read that starts the
        policy's ``settle`` seconds (default 10) after it (the settle rule).

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
        :raises ImkitError: any other failure, typed (see the docs' error table);
            ``exc.maybe_delivered`` says whether it may be in the room anyway.
        """
        body = validation.message_body(room, sender, message, message_type, push, skip_total_badge, mentions)
        since_ms = int(time.time() * 1000) - READ_BACK_CLOCK_SKEW_MS

        def read_back(until: float) -> Any:
            found = find_message(self, **message_fields(body), since_ms=since_ms, until=until)
            return NOT_FOUND if found is None else found

        result: dict[str, Any] = self.request(
            "POST",
            "/messages",
            json_body=body,
            expect="a message object",
            subject={"room": room, "sender": sender},
            reconcile=read_back,
        )
        remember_own_post(result.get("_id"))
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
        return find_message(self, **message_fields(body), since_ms=since_ms, settled_after=settled_after)

    def room_messages(
        self, room: str, *, since_ms: int, pages: int = READ_BACK_PAGES
    ) -> list[dict[str, Any]]:
        """
        The messages of a room created at or after ``since_ms`` (ms since the epoch), newest
        first (``GET /rooms/{room}/messages/v3``, ``timeRangeField=createdAt``, 100 a page).

        :param room: id of the room.
        :param since_ms: the oldest creation time to list.
        :param pages: at most this many pages of 100 are read (default 5).
        :return: message objects as the room lists them (``sender`` may be a user object).
        :raises ImkitReadBackError: more messages than ``pages`` pages hold.
        :raises ImkitNotFoundError: no such room.
        """
        room = validation.identifier("room", room)
        what = f"since {since_ms}: read fewer (a later since_ms) or more pages"
        return list(room_messages(self, room, since_ms=since_ms, pages=pages, what=what))

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
        result: dict[str, Any] = self.request(
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
        result: dict[str, Any] = self.request(
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
        result: dict[str, Any] = self.request(
            "POST", "/admin/clients", json_body=body, expect="a user object", subject={"user_id": user_id}
        )
        self.log.info("IMKIT user %s created or updated", user_id)
        return {key: value for key, value in result.items() if "token" not in key.lower()}

    def connection_count(self) -> dict[str, Any]:
        """
        Read the number of open client connections (``GET /admin/connection-count``): a
        read-only call that proves the base URL and API key, tried once.

        :return: ``{"count": <int>}``.
        :raises ImkitError: typed, as :meth:`send_message` raises.
        """
        result: dict[str, Any] = self.request(
            "GET", "/admin/connection-count", retry=RetryPolicy(max_attempts=1)
        )
        return result
