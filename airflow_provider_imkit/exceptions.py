"""Errors raised by the IMKIT provider.

Every error carries facts (HTTP status, RC, RM, error code, server message, method, path,
retry-after) and never the API key or request headers.

Hierarchy::

    ImkitError (AirflowException)
    +-- ImkitValidationError (also ValueError)      bad input, raised before any request
    +-- ImkitConfigurationError                     unusable connection (no host, bad key...)
    +-- ImkitConnectionError                        transport failure (refused, reset, timeout)
    +-- ImkitApiError                               the server answered with an error
        +-- ImkitAuthenticationError                401 / 403
        +-- ImkitNotFoundError                      404 (code: ROOM_NOT_FOUND, CLIENT_NOT_FOUND...)
        +-- ImkitRateLimitError                     429 (retry_after seconds)
        +-- ImkitBadRequestError                    400 / 413 / 422
        +-- ImkitServerError                        5xx

Errors that retrying cannot fix (validation, configuration, authentication, not found, bad
request) are also :class:`~airflow.exceptions.AirflowFailException`, so a task that raises
one fails at once instead of burning its Airflow retries.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


def _restore(cls: type[ImkitError], args: tuple[Any, ...], state: dict[str, Any]) -> ImkitError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ImkitError(AirflowException):
    """Base class of every error raised by the IMKIT provider."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The subclasses take keyword-only arguments; pickle by state so that errors
        # survive being sent between processes (executors, the triggerer).
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class ImkitValidationError(ImkitError, AirflowFailException, ValueError):
    """
    An argument is invalid; raised before any request is sent.

    :param field: the name of the offending parameter (``room``, ``mentions[2]``...).
    :param problem: what is wrong with it, in words.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"Invalid IMKIT argument '{field}': {problem}")


class ImkitConfigurationError(ImkitError, AirflowFailException):
    """The Airflow connection cannot be used (missing host or key, malformed key, bad extras)."""


class ImkitConnectionError(ImkitError):
    """
    The request did not get an HTTP response (connection refused, reset, TLS or timeout).

    :param method: HTTP method of the request.
    :param path: API path of the request, e.g. ``/messages``.
    :param reason: short description of the transport failure.
    :param maybe_delivered: True when the request may have reached the server (read timeout,
        connection reset after sending): retrying it may post the message twice.
    :param permanent: True when retrying cannot help (a TLS certificate problem).
    """

    def __init__(
        self, method: str, path: str, reason: str, *, maybe_delivered: bool, permanent: bool = False
    ) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        self.maybe_delivered = maybe_delivered
        self.permanent = permanent
        super().__init__(f"IMKIT {method} {path} failed: {reason}")


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
    """

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
    ) -> None:
        self.method = method
        self.path = path
        # AirflowException declares status_code as an HTTPStatus; IMKIT statuses are plain ints.
        self.status_code: int = status_code  # type: ignore[assignment]
        self.rc = rc
        self.rm = rm
        self.code = code
        self.message = message
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"IMKIT {self.method} {self.path} failed: HTTP {self.status_code}"
        if self.rc is not None and str(self.rc) not in ("0", str(self.status_code)):
            text += f" RC {self.rc}"
        if self.code:
            text += f" {self.code}"
        if self.message:
            text += f": {self.message}"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        return text


class ImkitAuthenticationError(ImkitApiError, AirflowFailException):
    """401 or 403: the API key is missing, invalid, or lacks the permission."""


class ImkitNotFoundError(ImkitApiError, AirflowFailException):
    """404: the room, client (user) or message does not exist; ``code`` tells which."""


class ImkitRateLimitError(ImkitApiError):
    """429: too many requests; ``retry_after`` holds the seconds the server asked for."""


class ImkitBadRequestError(ImkitApiError, AirflowFailException):
    """400, 413 or 422: the server rejected the request (missing parameter, too large...)."""


class ImkitServerError(ImkitApiError):
    """5xx: the server failed."""
