"""Errors raised by the IMKIT provider.

Every error carries facts (HTTP status, RC, RM, error code, server message, method, path,
retry-after, and the subject: room, sender or user, connection id) and never the API key
or request headers.

Hierarchy::

    ImkitError (AirflowException)
    +-- ImkitValidationError (also ValueError)      bad input, raised before any request
    +-- ImkitConfigurationError                     unusable connection (no host, bad key...)
    +-- ImkitReadBackError                          a room could not be read back to check delivery
    +-- ImkitApprovalError                          an approval in a room ended without going ahead
    |   +-- ImkitApprovalRejectedError              a non-approving option (fail_on_reject=True)
    |   +-- ImkitApprovalTimeoutError               no counting reply in time, no default_option
    +-- ImkitConnectionError                        transport failure (refused, reset, timeout)
    |   +-- ImkitTlsError                           TLS failed (certificate, plain HTTP): permanent
    +-- ImkitApiError                               the server answered with an error
        +-- ImkitAuthenticationError                401 / 403
        +-- ImkitNotFoundError                      404 (code: ROOM_NOT_FOUND, CLIENT_NOT_FOUND...)
        +-- ImkitRateLimitError                     429 (retry_after seconds)
        +-- ImkitBadRequestError                    400 / 413 / 422
        +-- ImkitServerError                        5xx

Errors that retrying cannot fix (validation, configuration, authentication, not found, bad
request, TLS) are also :class:`~airflow.exceptions.AirflowFailException`, so a task that
raises one fails at once instead of burning its Airflow retries.

This module never imports Airflow on its own, so that :mod:`airflow_provider_imkit.client`
works where Airflow cannot be imported (even with ``sys.modules["airflow"] = None``). The
rebase onto Airflow's exceptions is one function, :func:`use_airflow_exceptions`: this module
runs it when it is imported in a process that has Airflow loaded already, and
:mod:`airflow_provider_imkit.version_compat` (imported by every Airflow-facing module) when
Airflow comes later. Either way the classes are rebased in place, whatever the order of
imports; without Airflow they derive from Exception.
"""

from __future__ import annotations

import sys
from typing import Any


class _Root(Exception):
    """The common root of the two stand-ins below."""


class _Base(_Root):
    """Stands for AirflowException: rebased onto it once Airflow is loaded."""


class _FailFast(_Root):
    """Stands for AirflowFailException: rebased onto it once Airflow is loaded."""


def use_airflow_exceptions() -> None:
    """
    Make every provider error an ``AirflowException``, and the permanent ones
    ``AirflowFailException`` (so a task fails at once instead of burning its retries).

    Run on import of this module where Airflow is loaded, and by
    :mod:`airflow_provider_imkit.version_compat` (which every Airflow-facing module imports);
    errors created before are rebased too. Idempotent.
    """
    if _Base.__bases__ != (_Root,):
        return
    from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

    _Base.__bases__ = (AirflowException,)
    _FailFast.__bases__ = (AirflowFailException,)


#: HTTP statuses after which a request may or may not have been processed.
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
#: HTTP statuses that prove the request was not processed and may be sent again.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


def _restore(cls: type[ImkitError], args: tuple[Any, ...], state: dict[str, Any]) -> ImkitError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ImkitError(_Base):
    """
    Base class of every error raised by the IMKIT provider.

    :ivar maybe_delivered: True when the request may have taken effect although no success
        was seen (read timeout, connection lost after sending, 500/502/504).
    :ivar transient: True when sending the request again may succeed.
    """

    maybe_delivered: bool = False
    transient: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        # The subclasses take keyword-only arguments; pickle by state so that errors
        # survive being sent between processes (executors, the triggerer).
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class ImkitValidationError(ImkitError, _FailFast, ValueError):
    """
    An argument is invalid; raised before any request is sent.

    :param field: the name of the offending parameter (``room``, ``mentions[2]``...).
    :param problem: what is wrong with it, in words.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"Invalid IMKIT argument '{field}': {problem}")


class ImkitConfigurationError(ImkitError, _FailFast):
    """The Airflow connection cannot be used (missing host or key, malformed key, bad extras)."""


class ImkitConnectionError(ImkitError):
    """
    The request did not get an HTTP response (connection refused, reset, TLS or timeout).

    :param method: HTTP method of the request.
    :param path: API path of the request, e.g. ``/messages``.
    :param reason: short description of the transport failure.
    :param maybe_delivered: True when the request may have reached the server (read timeout,
        connection reset after sending): sending it again may post the message twice.
    :param permanent: True when retrying cannot help (a TLS problem); such an error is also
        an ``AirflowFailException`` (see :class:`ImkitTlsError`).
    """

    def __init__(
        self, method: str, path: str, reason: str, *, maybe_delivered: bool, permanent: bool = False
    ) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        self.maybe_delivered = maybe_delivered
        self.permanent = permanent
        self.transient = not permanent
        super().__init__(f"IMKIT {method} {path} failed: {reason}")


class ImkitReadBackError(ImkitError):
    """A room could not be read back to prove whether a message was stored (never guessed):
    the message may have been delivered (``maybe_delivered`` is True)."""

    transient = True
    maybe_delivered = True


class ImkitApprovalError(ImkitError, _FailFast):
    """
    An approval asked in a room ended without letting the pipeline go ahead, or could not
    wait (the room cannot be read: unknown room, bad key). Permanent: asking again would not
    change the answer.
    """


class ImkitApprovalRejectedError(ImkitApprovalError):
    """A non-approving option was chosen and the operator has ``fail_on_reject=True``."""


class ImkitApprovalTimeoutError(ImkitApprovalError):
    """No approver answered before the timeout, and there is no ``default_option``."""


class ImkitRoomReadError(ImkitError, _FailFast):
    """A message sensor's room cannot be read for good (an unknown room, a bad key): its
    message says why. Transient read errors never raise it (the wait retries them)."""


class ImkitTlsError(ImkitConnectionError, _FailFast):
    """TLS failed (certificate, or plain HTTP answering a TLS hello): retrying cannot help."""

    def __init__(self, method: str, path: str, reason: str) -> None:
        super().__init__(method, path, reason, maybe_delivered=False, permanent=True)


#: What an error's subject is called in its message, by the API's error code.
_SUBJECT_BY_CODE = {
    "ROOM_NOT_FOUND": ("room",),
    "NOT_ROOM_MEMBER": ("sender", "room"),
    "CLIENT_NOT_FOUND": ("sender", "user_id"),
    "MESSAGE_NOT_FOUND": ("message_id", "room"),
}


class ImkitApiError(ImkitError):
    """
    The IMKIT server answered with an error, or with a response that is not a valid success.

    :param method: HTTP method of the request.
    :param path: API path of the request.
    :param status_code: HTTP status of the response.
    :param rc: the envelope's ``RC`` (None when absent).
    :param rm: the envelope's ``RM`` (None when absent).
    :param code: the error code, e.g. ``ROOM_NOT_FOUND`` (None when absent).
    :param message: the server's human-readable message (None when absent).
    :param retry_after: seconds the server asked to wait (429), else None.
    :param subject: what the request was about, by name: ``room``, ``sender``, ``user_id``,
        ``message_id``, ``conn_id``. Each is also an attribute (None when not given), and the
        ones the error is about are named in its text (the room for ROOM_NOT_FOUND, the
        sender for CLIENT_NOT_FOUND, the connection for authentication errors).
    """

    room: str | None = None
    sender: str | None = None
    user_id: str | None = None
    message_id: str | None = None
    conn_id: str | None = None

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status_code: int,
        rc: int | str | None = None,
        rm: str | None = None,
        code: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        subject: dict[str, str] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        # AirflowException declares status_code as an HTTPStatus; IMKIT statuses are plain ints.
        self.status_code: int = status_code
        self.rc = rc
        self.rm = rm
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.subject = dict(subject or {})
        for name, value in self.subject.items():
            setattr(self, name, value)
        self.maybe_delivered = status_code in AMBIGUOUS_STATUSES
        self.transient = status_code in AMBIGUOUS_STATUSES | NOT_PROCESSED_STATUSES
        super().__init__(self._describe())

    def _subject_text(self) -> str:
        names: tuple[str, ...] = _SUBJECT_BY_CODE.get(self.code or "", ())
        if isinstance(self, ImkitAuthenticationError):
            # Older servers answer 403 for a missing room or a sender not in it: name them too.
            names = ("conn_id", *(names or (("room", "sender") if self.status_code == 403 else ())))
        labels = {"conn_id": "connection", "user_id": "user", "message_id": "message"}
        parts = [f"{labels.get(n, n)} {self.subject[n]!r}" for n in names if self.subject.get(n)]
        return f" [{', '.join(parts)}]" if parts else ""

    def _describe(self) -> str:
        text = f"IMKIT {self.method} {self.path} failed: HTTP {self.status_code}"
        if self.rc is not None and str(self.rc) not in ("0", str(self.status_code)):
            text += f" RC {self.rc}"
        if self.code:
            text += f" {self.code}"
        if self.message:
            text += f": {self.message}"
        text += self._subject_text()
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        return text


class ImkitAuthenticationError(ImkitApiError, _FailFast):
    """401 or 403: the API key is missing, invalid, or lacks the permission."""


class ImkitNotFoundError(ImkitApiError, _FailFast):
    """404: the room, client (user) or message does not exist; ``code`` tells which."""


class ImkitRateLimitError(ImkitApiError):
    """429: too many requests; ``retry_after`` holds the seconds the server asked for."""


class ImkitBadRequestError(ImkitApiError, _FailFast):
    """400, 413 or 422: the server rejected the request (missing parameter, too large...)."""


class ImkitServerError(ImkitApiError):
    """5xx: the server failed."""


# Imported where Airflow is already loaded (the client used in a task): rebase now. Where it is
# loaded later, version_compat (imported by every Airflow-facing module) rebases.
if sys.modules.get("airflow") is not None:
    use_airflow_exceptions()
