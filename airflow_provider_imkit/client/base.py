"""BaseClient: the one request path of IMKIT's Platform API, with no Airflow in it.

:class:`~airflow_provider_imkit.client.ImkitClient` puts the endpoint methods over it.
Readable top to bottom:

1. :meth:`BaseClient.request` encodes the body once and runs attempts under the
   :class:`~airflow_provider_imkit.client.retry.RetryPolicy` (tenacity), within one deadline;
2. each attempt (:meth:`BaseClient._attempt`) sends through this thread's pooled
   ``requests.Session`` whose sockets stop at the deadline (:mod:`.transport`);
3. transport failures become :class:`ImkitConnectionError` (delivered or maybe, see
   :func:`.transport.transport_error`), redirects and results of the wrong shape become
   :class:`ImkitApiError`, and everything else is the envelope (:func:`.envelope.parse_response`);
4. an ambiguous failure (the request may have taken effect) is resolved by the caller's
   ``reconcile`` function when the policy says ``reconcile``: found, it is the result;
   proven absent, the request is sent again; unknown, the ambiguous error is raised.

Every error is a typed :class:`~airflow_provider_imkit.exceptions.ImkitError` that names
the connection, method and path, and never carries the API key.

``import airflow_provider_imkit.client`` never imports Airflow: the client runs in plain
scripts and in threads of Airflow components alike.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Self

import requests
import tenacity

from airflow_provider_imkit import __version__
from airflow_provider_imkit.client.envelope import parse_response
from airflow_provider_imkit.client.read_back import NOT_FOUND, UNSETTLED, no_answer_from_server
from airflow_provider_imkit.client.transport import deadline, new_session, transport_error, without_frames
from airflow_provider_imkit.exceptions import ImkitApiError, ImkitConnectionError, ImkitError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

    from airflow_provider_imkit.client.retry import RetryPolicy
    from airflow_provider_imkit.client.settings import ImkitSettings

__all__ = ["NOT_FOUND", "UNSETTLED", "USER_AGENT", "BaseClient", "no_answer_from_server"]


def _airflow_component(argv: list[str]) -> str | None:
    """The Airflow command this process runs (``celery worker``, ``dag-processor``,
    ``triggerer``, ``scheduler``, ``dags test``...), from its command line; None outside Airflow.
    Task processes, callbacks and triggers run in (forks of) these, so servers can tell which
    component sent a request."""
    if not argv or os.path.basename(argv[0]) != "airflow" or len(argv) < 2:
        return None
    words = [word for word in argv[1:3] if not word.startswith("-")]
    return " ".join(words[:2] if words and words[0] in ("celery", "dags", "tasks") else words[:1]) or None


_COMPONENT = _airflow_component(sys.argv)
#: Sent with every request: the provider's version, and the Airflow component when known.
USER_AGENT = f"airflow-provider-imkit/{__version__}" + (f" (airflow {_COMPONENT})" if _COMPONENT else "")


#: How clients wait and tell the time unless given their own ``sleep`` and ``clock``; looked up
#: at each use, so a test can replace them for every client (tests.conftest's fake_client_time).
DEFAULT_SLEEP: Callable[[float], None] = time.sleep
DEFAULT_CLOCK: Callable[[], float] = time.time


class BaseClient:
    """
    A pooled, retrying, deadline-bound client of IMKIT's Platform API: the request path
    alone. Build an :class:`~airflow_provider_imkit.client.ImkitClient` (this, with the
    endpoint methods) rather than this class.

    One client may be shared by several threads: each thread gets its own pooled session.

    :param settings: base URL, API key, timeouts, deadline, TLS, proxy and retry policy.
    :param log: a ``logging.Logger``-like object for attempts and retries (default: this
        module's logger; the hook passes its own).
    :param sleep: the function used to wait between attempts and read-backs (default
        ``time.sleep``; tests inject a fake one).
    :param clock: the time in seconds (default ``time.time``) by which the read-back's
        settle window is measured (tests inject one that their ``sleep`` moves on).
    """

    def __init__(
        self,
        settings: ImkitSettings,
        *,
        log: Any = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.log = log or logging.getLogger(__name__)
        self._sleep: Callable[[float], None] = sleep or (lambda seconds: DEFAULT_SLEEP(seconds))
        self._clock: Callable[[], float] = clock or (lambda: DEFAULT_CLOCK())
        #: IMKIT's clock less ours (s), from the ``Date`` header of the last answer; None before.
        self.server_time_offset: float | None = None
        self._last_date: str | None = None
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    # -- sessions -----------------------------------------------------------------------------

    def session(self) -> requests.Session:
        """Return this thread's pooled session, creating it on first use."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = new_session(self.settings, USER_AGENT)
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def close(self) -> None:
        """Close every pooled connection this client opened (in any thread)."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the one request path -----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        expect: str | None = "an object",
        subject: dict[str, str] | None = None,
        reconcile: Callable[[float], Any] | None = None,
        until: float | None = None,
    ) -> Any:
        """
        Send one API call under the retry policy and return the envelope's ``result``.

        :param method: HTTP method.
        :param path: API path starting with ``/``; ids in it must be percent-encoded.
        :param json_body: the JSON body, sent UTF-8 encoded (CJK and emoji as they are).
        :param params: query string parameters.
        :param retry: a policy for this call only (default: the settings' policy).
        :param expect: what the result must be, a JSON object, described for the error
            (e.g. ``"a message object"``); None accepts any result.
        :param subject: what the call is about (``room``, ``sender``, ``user_id``,
            ``message_id``), named in its errors; the connection id is added.
        :param reconcile: for calls that can be read back: called after an ambiguous failure
            when the policy's ``on_ambiguous`` is ``reconcile``, with the call's deadline
            (``time.monotonic()`` value) to read within; returns the stored result, or
            :data:`NOT_FOUND` when proven absent (the call is then sent again), or raises when
            it cannot tell (the ambiguous error is raised, with that reason as a note).
        :param until: an earlier deadline than the settings' (``time.monotonic()`` value), for
            a call made within another call (a read-back).
        :raises ImkitApiError: the server answered with an error.
        :raises ImkitConnectionError: no response could be had.
        """
        policy = retry or self.settings.retry
        data = None
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        subject = {"conn_id": self.settings.conn_id, **(subject or {})}
        at = time.monotonic() + self.settings.deadline
        if until is not None:
            at = min(at, until)

        def attempt() -> Any:
            try:
                return self._attempt(method, path, data, params, at, expect, subject)
            except ImkitError as error:
                if reconcile is None or not error.maybe_delivered or policy.on_ambiguous != "reconcile":
                    raise
                # The settle rule: a server that gave no answer may still be storing it.
                settled_after = self._clock() + (policy.settle if no_answer_from_server(error) else 0.0)
                return self._reconcile(method, path, error, lambda: reconcile(at), settled_after, at)

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
            before_sleep=lambda state: self.log.warning(
                "IMKIT %s %s attempt %d failed (%s); retrying in %.1f s",
                method,
                path,
                state.attempt_number,
                state.outcome.exception() if state.outcome else None,
                state.upcoming_sleep,
            ),
            reraise=True,
        )
        result = retrying(attempt)
        attempts = retrying.statistics.get("attempt_number", 1)
        if attempts > 1:
            self.log.info("IMKIT %s %s succeeded on attempt %d", method, path, attempts)
        return result

    def _reconcile(
        self,
        method: str,
        path: str,
        error: ImkitError,
        reconcile: Callable[[], Any],
        settled_after: float,
        until: float,
    ) -> Any:
        """Resolve an ambiguous failure by reading back: the stored result, or the error
        (made retryable only when absence was proven by a read-back after ``settled_after``)."""
        try:
            found = self.read_back(reconcile, settled_after=settled_after, until=until)
        except ImkitError as unreadable:
            error.add_note(f"Read-back to check for delivery failed ({unreadable}); not sent again.")
            self.log.error(
                "IMKIT %s %s: may have been delivered; read-back failed: %s", method, path, unreadable
            )
            raise error from unreadable
        if found is UNSETTLED:
            error.add_note(
                "Not in the room yet, but IMKIT may still store it (the call's deadline ended "
                "before the read-back settle window); not sent again."
            )
            self.log.error("IMKIT %s %s: %s; may still be stored: not sent again", method, path, error)
            raise error
        if found is NOT_FOUND:
            self.log.warning("IMKIT %s %s: %s; read-back shows it was not stored", method, path, error)
            error.add_note("Read-back shows the request was not stored.")
            error.maybe_delivered = False  # proven absent: the policy may now send it again
            raise error
        self.log.warning(
            "IMKIT %s %s: %s; recovered the stored result from the read-back", method, path, error
        )
        return found

    def read_back(
        self,
        read: Callable[[], Any],
        *,
        settled_after: float,
        until: float | None = None,
    ) -> Any:
        """
        Read back until the result is found or its absence is settled (the settle rule).

        ``read`` returns the stored result or :data:`NOT_FOUND`. The first read is made at
        once; while it finds nothing and ``settled_after`` (a value of the client's
        ``clock``, ``time.time()`` by default) has not passed, the room is read again every
        quarter of the window (at least 0.5 s apart), the last time at or after
        ``settled_after``.

        :return: the result, :data:`NOT_FOUND` when a read that started at or after
            ``settled_after`` found nothing, or :data:`UNSETTLED` when ``until`` (a
            ``time.monotonic()`` value) ends before such a read could be made.
        :raises ImkitError: a read failed.
        """
        step = max(0.5, (settled_after - self._clock()) / 4)
        # The deadline on the same clock as the window (the one the injected sleep moves on).
        end = None if until is None else self._clock() + (until - time.monotonic())
        while True:
            started = self._clock()
            found = read()
            if found is not NOT_FOUND or started >= settled_after:
                return found
            wait = min(step, settled_after - self._clock())
            if end is not None and self._clock() + max(wait, 0.0) >= end:
                return UNSETTLED
            if wait > 0:
                self.log.info("IMKIT read-back: not stored yet; reading again in %.1f s", wait)
                self._sleep(wait)

    def _attempt(
        self,
        method: str,
        path: str,
        data: bytes | None,
        params: Mapping[str, Any] | None,
        at: float,
        expect: str | None,
        subject: dict[str, str],
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
                response = self.session().request(
                    method,
                    settings.base_url + path,
                    data=data,
                    params=params,
                    timeout=(min(connect_timeout, remaining), min(read_timeout, remaining)),
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            error = transport_error(
                method, path, exc, self._redact, settings.scheme_assumed, settings.base_url
            )
            if time.monotonic() >= at - 0.001 and not error.permanent:
                raise ImkitConnectionError(
                    method,
                    path,
                    f"deadline of {settings.deadline:g} s reached ({error.reason})",
                    maybe_delivered=error.maybe_delivered,
                    permanent=error.permanent,
                ) from without_frames(exc)
            raise error from without_frames(exc)
        self._note_server_time(response.headers.get("Date"))
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
                subject=subject,
            )
        result = parse_response(
            method=method,
            path=path,
            status_code=response.status_code,
            headers=response.headers,
            content=response.content,
            redact=self._redact,
            subject=subject,
        )
        if expect is not None and not isinstance(result, dict):
            raise ImkitApiError(
                method=method,
                path=path,
                status_code=response.status_code,
                rc=0,
                message=f"expected {expect} as result, got {type(result).__name__}",
                subject=subject,
            )
        return result

    def _note_server_time(self, date: str | None) -> None:
        # Parsed once per second of the server's clock: most answers repeat the last Date.
        if not date or date == self._last_date:
            return
        self._last_date = date
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, OverflowError):
            return
        self.server_time_offset = server - self._clock()

    def server_time(self) -> float | None:
        """IMKIT's time now (seconds since the epoch) as its last answer's ``Date`` header
        told it (to the second, rounded down), or None before any answer had one. Deadlines
        set on IMKIT's clock (an approval's) are judged by this, whatever this host's clock says."""
        offset = self.server_time_offset
        return None if offset is None else self._clock() + offset

    def _redact(self, text: str) -> str:
        key = self.settings.api_key
        return text.replace(key, "***") if key else text
