"""ImkitHook: an Airflow connection turned into a pooled, retrying HTTP client for IMKIT."""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
import tenacity
from airflow.providers.common.compat.sdk import BaseHook, mask_secret

from airflow_provider_imkit import DEFAULT_CONN_ID, __version__, validation
from airflow_provider_imkit.envelope import parse_response
from airflow_provider_imkit.exceptions import (
    ImkitApiError,
    ImkitAuthenticationError,
    ImkitConnectionError,
    ImkitError,
    ImkitNotFoundError,
)
from airflow_provider_imkit.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_imkit.retry import RetryPolicy
from airflow_provider_imkit.settings import (
    ImkitSettings,
    api_key_from,
    base_url_from,
    deadline_from,
    proxy_from,
    retry_from,
    timeout_from,
    unknown_extras,
    verify_from,
)
from airflow_provider_imkit.transport import DeadlineAdapter, deadline, transport_error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType

USER_AGENT = f"airflow-provider-imkit/{__version__}"


def path_segment(value: str) -> str:
    """Percent-encode an id for use as one URL path segment (``/`` and ``..`` included)."""
    return quote(value, safe="")


class ImkitHook(BaseHook):
    """
    Interact with IMKIT's Platform API.

    The connection's host is the Base URL (``https://<app>.imkit.io``, or any self-hosted
    server) and its password is the platform API key, sent as the ``IM-API-KEY`` header.
    Every call goes through one request path that owns timeouts, retries and error mapping.
    One hook may be shared by several threads: each thread gets its own pooled session.

    :param imkit_conn_id: Airflow connection id of type ``imkit``.
    :param timeout: seconds, a number for both or a ``(connect, read)`` pair; overrides the
        connection's ``timeout`` extras (default 10 s connect, 30 s read).
    :param deadline: seconds one call may take in all (connects, reads, retries and waits
        included), whatever the server does; overrides the ``deadline`` extra (default 120).
    :param max_attempts: attempts per request, the first included; overrides the extras.
    :param retry_on_ambiguous: also retry failures after which the message may have been
        stored (may post twice); overrides the extras. Default False.
    :param retry_policy: a complete :class:`RetryPolicy`; when given, the connection's
        retry extras and the two arguments above are ignored.
    :param sleep: the function used to wait between attempts (tests inject a fake one).
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
        max_attempts: int | None = None,
        retry_on_ambiguous: bool | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.imkit_conn_id = imkit_conn_id
        self._timeout = timeout
        self._deadline = deadline
        self._max_attempts = max_attempts
        self._retry_on_ambiguous = retry_on_ambiguous
        self._retry_policy = retry_policy
        self._sleep = sleep
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra connection form fields for Airflow 2.11 to 3.1 (3.2+ reads ``conn-fields``)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, StringField

        def text(name: str) -> Any:
            field = CONN_FIELDS[name]
            return StringField(
                lazy_gettext(field["label"]), widget=BS3TextFieldWidget(), description=field["description"]
            )

        widgets = {name: text(name) for name in ("timeout", "max_attempts", "proxy", "verify")}
        field = CONN_FIELDS["retry_on_ambiguous"]
        widgets["retry_on_ambiguous"] = BooleanField(
            lazy_gettext(field["label"]), default=False, description=field["description"]
        )
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow 2.11 to 3.1 (3.2+ reads get_provider_info)."""
        # The hook method spells the keys with underscores, provider info with hyphens.
        return {key.replace("-", "_"): copy.deepcopy(value) for key, value in UI_FIELD_BEHAVIOUR.items()}

    # -- connection and session ------------------------------------------------------------

    @cached_property
    def settings(self) -> ImkitSettings:
        """The connection read once: base URL, API key, timeouts, TLS, proxy and retry policy."""
        conn = self.get_connection(self.imkit_conn_id)
        conn_id = self.imkit_conn_id
        if conn.password:
            mask_secret(conn.password)
        api_key = api_key_from(conn_id, conn.password)
        extras = conn.extra_dejson
        unknown = unknown_extras(extras)
        if unknown:
            self.log.warning("IMKIT connection %r: ignoring unknown extras %s", conn_id, unknown)
        if self._retry_policy is not None:
            policy = self._retry_policy
        else:
            policy = retry_from(conn_id, extras, RetryPolicy()).with_overrides(
                max_attempts=self._max_attempts, retry_on_ambiguous=self._retry_on_ambiguous
            )
        return ImkitSettings(
            conn_id=conn_id,
            base_url=base_url_from(conn_id, conn.host, conn.schema, conn.port),
            api_key=api_key,
            timeout=timeout_from(conn_id, extras, self._timeout),
            deadline=deadline_from(conn_id, extras, self._deadline),
            verify=verify_from(conn_id, extras),
            proxy=proxy_from(extras),
            retry=policy,
        )

    def get_conn(self) -> requests.Session:
        """Return this thread's pooled session, creating it on first use."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            settings = self.settings
            session = requests.Session()
            adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update(
                {
                    "IM-API-KEY": settings.api_key,
                    "Content-Type": "application/json; charset=utf-8",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                }
            )
            # Read the environment once per session, not on every request: requests would scan
            # every environment variable for proxies per call (a large share of its cost in
            # an Airflow worker), consult ~/.netrc, and let REQUESTS_CA_BUNDLE override an
            # explicit verify=False or CA bundle.
            session.trust_env = False
            if settings.proxy:
                session.proxies = {"http": settings.proxy, "https": settings.proxy}
            else:
                session.proxies = _environ_proxies(settings.base_url)
            session.verify = _effective_verify(settings.verify)
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def close(self) -> None:
        """Close every pooled connection this hook opened (in any thread)."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def __enter__(self) -> ImkitHook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the one request path ----------------------------------------------------------------

    def _redact(self, text: str) -> str:
        key = self.settings.api_key
        return text.replace(key, "***") if key else text

    def _attempt(
        self, method: str, path: str, data: bytes | None, params: Mapping[str, Any] | None, at: float
    ) -> Any:
        settings = self.settings
        remaining = at - time.monotonic()
        if remaining <= 0:
            raise ImkitConnectionError(
                method,
                path,
                f"deadline of {settings.deadline:g} s reached before sending",
                maybe_delivered=False,
            )
        connect_timeout, read_timeout = settings.timeout
        try:
            with deadline(at):
                response = self.get_conn().request(
                    method,
                    settings.base_url + path,
                    data=data,
                    params=params,
                    timeout=(min(connect_timeout, remaining), min(read_timeout, remaining)),
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            error = transport_error(method, path, exc, self._redact)
            if time.monotonic() >= at - 0.001:
                raise ImkitConnectionError(
                    method,
                    path,
                    f"deadline of {settings.deadline:g} s reached ({error.reason})",
                    maybe_delivered=error.maybe_delivered,
                    permanent=error.permanent,
                ) from exc
            raise error from exc
        if 300 <= response.status_code <= 399:
            # Never follow: a redirect would carry the IM-API-KEY header to another URL.
            raise ImkitApiError(
                method=method,
                path=path,
                status_code=response.status_code,
                message=self._redact(
                    f"redirected to {response.headers.get('Location', '?')}; set the connection's "
                    "Base URL to the final address (redirects are not followed)"
                ),
            )
        return parse_response(
            method=method,
            path=path,
            status_code=response.status_code,
            headers=response.headers,
            content=response.content,
            redact=self._redact,
        )

    def _log_retry(self, method: str, path: str) -> Callable[[tenacity.RetryCallState], None]:
        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self.log.warning(
                "IMKIT %s %s attempt %d failed (%s); retrying in %.1f s",
                method,
                path,
                state.attempt_number,
                error,
                state.upcoming_sleep,
            )

        return log_retry

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> tuple[Any, int]:
        """
        Send one API call with the retry policy and return ``(result, attempts)``.

        Endpoint methods call this and nothing else: it alone joins the URL, sets headers
        and timeouts, retries, parses the envelope and maps errors.

        :param method: HTTP method.
        :param path: API path starting with ``/``; ids in it must be encoded with
            :func:`path_segment`.
        :param json_body: the JSON body, sent UTF-8 encoded (CJK and emoji as they are).
        :param params: query string parameters.
        :param retry: a policy for this call only (default: the hook's).
        :raises ImkitApiError: the server answered with an error.
        :raises ImkitConnectionError: no response could be had.
        """
        policy = retry or self.settings.retry
        data = None
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        at = time.monotonic() + self.settings.deadline

        def stop(state: tenacity.RetryCallState) -> bool:
            # No attempt beyond max_attempts, and no wait that would end past the deadline.
            return (
                state.attempt_number >= policy.max_attempts or time.monotonic() + state.upcoming_sleep >= at
            )

        retrying = tenacity.Retrying(
            stop=stop,
            retry=tenacity.retry_if_exception(policy.is_retryable),
            wait=lambda state: policy.wait_before(
                state.attempt_number, state.outcome.exception() if state.outcome else None
            ),
            sleep=self._sleep,
            before_sleep=self._log_retry(method, path),
            reraise=True,
        )
        result = retrying(self._attempt, method, path, data, params, at)
        return result, retrying.statistics.get("attempt_number", 1)

    # -- endpoints -------------------------------------------------------------------------

    def send_message(
        self,
        *,
        room: str,
        sender: str,
        message: str,
        message_type: str = "text",
        push: bool | None = None,
        skip_total_badge: bool | None = None,
        mentions: str | list[str] | tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """
        Send a message to a room (``POST /messages``) and return the stored message object.

        :param room: id of the room.
        :param sender: id of an existing user who sends the message.
        :param message: the message text.
        :param message_type: ``text`` (default), ``announcement``, ``image`` or an
            app-defined type.
        :param push: send push notifications to the room's members; None leaves the server's
            default (true).
        :param skip_total_badge: do not count the message in members' badge totals; None
            leaves the server's default (false).
        :param mentions: a user id, or ids, to notify as mentioned; duplicates are dropped.
        :return: the message object: ``_id``, ``room``, ``message``, ``messageType``,
            ``sender`` (an id, or a user object on some servers), ``messageTimeMS``...
        :raises ImkitValidationError: an argument is invalid; nothing was sent.
        """
        body: dict[str, Any] = {
            "room": validation.identifier("room", room),
            "sender": validation.identifier("sender", sender),
            "message": validation.text("message", message),
            "messageType": validation.identifier("message_type", message_type),
        }
        optional = {
            "push": validation.optional_bool("push", push),
            "skipTotalBadge": validation.optional_bool("skip_total_badge", skip_total_badge),
            "mentions": validation.user_ids("mentions", mentions),
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        started = time.monotonic()
        result, attempts = self.request("POST", "/messages", json_body=body)
        _expect_object("POST", "/messages", result, "a message object")
        self.log.info(
            "IMKIT message %s sent to room %s (%d attempt%s, %.0f ms)",
            result.get("_id"),
            room,
            attempts,
            "" if attempts == 1 else "s",
            (time.monotonic() - started) * 1000,
        )
        self.log.debug("IMKIT message text: %s", message)
        return result

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
        accepted. Note that ``push`` defaults to **false** on this endpoint (true on
        :meth:`send_message`).

        :param message: the text; ``$name$``-style placeholders are replaced per recipient.
        :param rooms: room ids to post to.
        :param receivers: user ids to message directly.
        :param values: per-recipient placeholder values, keyed by room or user id:
            ``{"team-a": {"$team$": "Analytics"}}``. Keys must look like ``$name$``.
        :param sender: id of the sending user; None lets the server choose (system).
        :param message_type: ``text`` (default) or another type.
        :param push: push-notify recipients; None leaves the server's default (false here).
        :param skip_total_badge: keep the message out of badge totals; None = server default.
        :return: ``{"batchID": ..., "count": ...}``.
        :raises ImkitValidationError: no recipient, a bad id, or a malformed placeholder.
        """
        body: dict[str, Any] = {
            "message": validation.text("message", message),
            "messageType": validation.identifier("message_type", message_type),
            "paras": validation.batch_recipients(rooms, receivers, values),
        }
        optional = {
            "sender": None if sender is None else validation.identifier("sender", sender),
            "push": validation.optional_bool("push", push),
            "skipTotalBadge": validation.optional_bool("skip_total_badge", skip_total_badge),
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        result, attempts = self.request("POST", "/messages/batch", json_body=body)
        _expect_object("POST", "/messages/batch", result, "a batch result")
        self.log.info(
            "IMKIT batch %s accepted for %s recipients (%d attempt%s)",
            result.get("batchID"),
            result.get("count", len(body["paras"])),
            attempts,
            "" if attempts == 1 else "s",
        )
        return result

    def recall_message(self, room: str, message_id: str) -> dict[str, Any]:
        """
        Recall (retract) a sent message: ``POST /rooms/{room}/message`` with ``messageType: recall``.

        :param room: id of the room the message was sent to (percent-encoded in the path).
        :param message_id: the message's ``_id``, e.g. from a send task's XCom.
        :return: the recalled message (``message`` empty, ``messageType`` ``recall``).
        """
        room = validation.identifier("room", room)
        message_id = validation.identifier("message_id", message_id)
        path = f"/rooms/{path_segment(room)}/message"
        result, _ = self.request("POST", path, json_body={"_id": message_id, "messageType": "recall"})
        _expect_object("POST", path, result, "the recalled message")
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
        result, _ = self.request("POST", "/admin/clients", json_body=body)
        _expect_object("POST", "/admin/clients", result, "a user object")
        self.log.info("IMKIT user %s created or updated", user_id)
        return {key: value for key, value in result.items() if "token" not in key.lower()}

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the connection with a read-only call (``GET /admin/connection-count``).

        Never sends a message. Used by Airflow's "Test" button and ``airflow connections test``.

        :return: ``(True, text)`` when IMKIT answered, else ``(False, what to fix)``.
        """
        try:
            url = self.settings.base_url
            result, _ = self.request("GET", "/admin/connection-count", retry=RetryPolicy(max_attempts=1))
        except ImkitError as exc:
            return False, _connection_advice(self.imkit_conn_id, exc)
        count = result.get("count") if isinstance(result, dict) else None
        detail = f" ({count} client connections open)" if isinstance(count, int) else ""
        return True, f"Connected to IMKIT at {url}: the API key was accepted{detail}."


def _environ_proxies(url: str) -> dict[str, str]:
    """Proxies from the environment for ``url``, as requests finds them.

    requests scans every environment variable for ``*_proxy`` names; when none of the
    usual ones is set (the common case) there is nothing to find, so skip the scan.
    """
    names = ("http_proxy", "https_proxy", "all_proxy")
    if not any(os.environ.get(name) or os.environ.get(name.upper()) for name in names):
        return {}
    return dict(requests.utils.get_environ_proxies(url))


def _effective_verify(verify: bool | str) -> bool | str:
    """What requests would verify against: with verify on, its CA bundle variables apply."""
    if verify is True:
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return verify


def _expect_object(method: str, path: str, result: Any, what: str) -> None:
    if not isinstance(result, dict):
        raise ImkitApiError(
            method=method,
            path=path,
            status_code=200,
            rc=0,
            message=f"expected {what} as result, got {type(result).__name__}",
        )


def _connection_advice(conn_id: str, exc: ImkitError) -> str:
    """Say what to fix for a failed connection test."""
    if isinstance(exc, ImkitAuthenticationError):
        what = exc.code or exc.status_code
        return f"IMKIT rejected the API key ({what}): check the password of connection {conn_id!r}. {exc}"
    if isinstance(exc, ImkitConnectionError) and exc.reason.startswith("TLS error"):
        return f"TLS failed: {exc.reason}. For a self-hosted server set the extra 'verify' to its CA bundle."
    if isinstance(exc, ImkitConnectionError):
        return f"Cannot reach the server: {exc.reason}. Check the Base URL, proxy and network. ({exc})"
    if isinstance(exc, ImkitNotFoundError | ImkitApiError) and (
        exc.status_code in (404, 405) or (exc.rc is None and exc.code is None)
    ):
        return f"The Base URL answered, but not as IMKIT's Platform API: check the Base URL. ({exc})"
    return str(exc)
