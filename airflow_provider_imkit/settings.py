"""Turn an Airflow connection into the settings the hook runs with.

Pure functions of the connection's fields, so they are tested as a table without HTTP.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_imkit.exceptions import ImkitConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_imkit.retry import RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_DEADLINE = 120.0

#: Connection extras the hook reads. Nothing else in ``extra`` is used, and no extra is
#: ever sent to the server (as a header or otherwise).
TIMEOUT_EXTRAS = ("timeout", "connect_timeout", "read_timeout", "deadline")
RETRY_EXTRAS = ("max_attempts", "backoff", "max_backoff", "max_retry_after", "retry_on_ambiguous")
TRANSPORT_EXTRAS = ("proxy", "verify")
KNOWN_EXTRAS = TIMEOUT_EXTRAS + RETRY_EXTRAS + TRANSPORT_EXTRAS

_warned_plain_http: set[str] = set()


@dataclass(frozen=True)
class ImkitSettings:
    """
    Everything the hook needs to talk to one IMKIT server.

    ``api_key`` is excluded from ``repr`` so that printing the settings never shows it.
    """

    conn_id: str
    base_url: str
    api_key: str
    timeout: tuple[float, float]
    deadline: float
    verify: bool | str
    proxy: str | None
    retry: RetryPolicy

    def __repr__(self) -> str:
        return (
            f"ImkitSettings(conn_id={self.conn_id!r}, base_url={self.base_url!r}, api_key='***', "
            f"timeout={self.timeout!r}, deadline={self.deadline!r}, verify={self.verify!r}, "
            f"proxy={self.proxy!r}, retry={self.retry!r})"
        )


def _error(conn_id: str, problem: str) -> ImkitConfigurationError:
    return ImkitConfigurationError(f"IMKIT connection {conn_id!r}: {problem}")


def base_url_from(conn_id: str, host: str | None, schema: str | None, port: int | None) -> str:
    """
    Build the API base URL from a connection's host, schema and port.

    ``host`` may be a full URL (``https://app.imkit.io``, ``http://127.0.0.1:8099/api``) or
    a bare host name; then ``schema`` gives the scheme (``http`` or ``https``, default
    ``https``), which is how the URI form ``imkit://:KEY@host:port/http`` says plain http.
    ``port`` is added when the host does not carry one. Trailing slashes are removed.
    """
    host = (host or "").strip()
    if not host:
        raise _error(conn_id, "no host: set the Base URL, e.g. https://<app>.imkit.io")
    if "://" in host:
        parts = urlsplit(host)
        scheme = parts.scheme.lower()
    else:
        scheme = (schema or "").strip().lower() or "https"
        parts = urlsplit(f"{scheme}://{host}")
    if scheme not in ("http", "https"):
        raise _error(conn_id, f"unsupported URL scheme {scheme!r}: use http or https")
    if parts.query or parts.fragment:
        raise _error(conn_id, "the Base URL must not carry a query string or fragment")
    try:
        has_port = parts.port is not None
    except ValueError as exc:
        raise _error(conn_id, f"invalid port in the Base URL ({exc})") from None
    if not parts.hostname:
        raise _error(conn_id, f"no host name in the Base URL {host!r}")
    if parts.username or parts.password:
        raise _error(conn_id, "the Base URL must not carry credentials: put the API key in the password")
    netloc = parts.netloc
    if port and not has_port:
        netloc = f"{netloc}:{int(port)}"
    url = urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))
    _warn_if_plain_http(scheme, parts.hostname, url)
    return url


def _warn_if_plain_http(scheme: str, hostname: str, url: str) -> None:
    if scheme != "http" or url in _warned_plain_http:
        return
    try:
        loopback = ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        loopback = hostname.lower() == "localhost"
    if not loopback:
        _warned_plain_http.add(url)
        log.warning("IMKIT base URL %s uses plain http: the API key travels unencrypted", url)


def api_key_from(conn_id: str, password: str | None) -> str:
    """Check the API key (the connection's password) without ever echoing it."""
    if not password:
        raise _error(conn_id, "no API key: put the platform API key in the connection's password")
    if any(not (0x21 <= ord(ch) <= 0x7E) for ch in password):
        raise _error(
            conn_id,
            f"the API key ({len(password)} characters) contains whitespace, control or non-ASCII "
            "characters (a pasted trailing newline?); the key itself is not shown",
        )
    return password


def _extra(extras: Mapping[str, Any], name: str) -> Any:
    # Airflow 2 connection forms stored custom fields as ``extra__<conn_type>__<name>``.
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(f"extra__imkit__{name}")
    return None if value == "" else value


def _float(conn_id: str, name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _error(conn_id, f"extra {name!r} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise _error(conn_id, f"extra {name!r} must be a positive number of seconds, got {value!r}")
    return number


def _bool(conn_id: str, name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise _error(conn_id, f"extra {name!r} must be true or false, got {value!r}")


def timeout_from(
    conn_id: str, extras: Mapping[str, Any], override: float | tuple[float, float] | None = None
) -> tuple[float, float]:
    """
    Resolve (connect, read) timeouts: the hook argument, else extras, else 10 s and 30 s.

    A single number sets both, as in requests. There is no way to wait forever.
    """
    if override is not None:
        pair = override if isinstance(override, tuple) else (override, override)
        connect = _float(conn_id, "timeout", pair[0])
        read = _float(conn_id, "timeout", pair[1])
        assert connect is not None and read is not None
        return (connect, read)
    both = _float(conn_id, "timeout", _extra(extras, "timeout"))
    connect = _float(conn_id, "connect_timeout", _extra(extras, "connect_timeout")) or both
    read = _float(conn_id, "read_timeout", _extra(extras, "read_timeout")) or both
    return (connect or DEFAULT_CONNECT_TIMEOUT, read or DEFAULT_READ_TIMEOUT)


def deadline_from(conn_id: str, extras: Mapping[str, Any], override: float | None = None) -> float:
    """Seconds one call may take in all: the hook argument, else the extra, else 120."""
    value = _float(conn_id, "deadline", override if override is not None else _extra(extras, "deadline"))
    return value or DEFAULT_DEADLINE


def proxy_from(extras: Mapping[str, Any]) -> str | None:
    """The ``proxy`` extra, used for both http and https; None when unset."""
    value = _extra(extras, "proxy")
    return (str(value).strip() or None) if value else None


def verify_from(conn_id: str, extras: Mapping[str, Any]) -> bool | str:
    """TLS verification: on by default; ``false`` turns it off, a path names a CA bundle."""
    value = _extra(extras, "verify")
    if value is None:
        return True
    if isinstance(value, str) and value.strip().lower() not in (
        "true",
        "1",
        "yes",
        "on",
        "false",
        "0",
        "no",
        "off",
    ):
        return value.strip()
    verify = _bool(conn_id, "verify", value)
    if verify is False:
        log.warning("IMKIT connection %r: TLS certificate verification is OFF (extra verify=false)", conn_id)
    return True if verify is None else verify


def retry_from(conn_id: str, extras: Mapping[str, Any], base: RetryPolicy) -> RetryPolicy:
    """Apply the retry extras on top of ``base``."""
    attempts = _extra(extras, "max_attempts")
    if attempts is not None:
        try:
            attempts = int(attempts)
        except (TypeError, ValueError):
            raise _error(conn_id, f"extra 'max_attempts' must be a whole number, got {attempts!r}") from None
    try:
        return base.with_overrides(
            max_attempts=attempts,
            backoff=_float(conn_id, "backoff", _extra(extras, "backoff")),
            max_backoff=_float(conn_id, "max_backoff", _extra(extras, "max_backoff")),
            max_retry_after=_float(conn_id, "max_retry_after", _extra(extras, "max_retry_after")),
            retry_on_ambiguous=_bool(conn_id, "retry_on_ambiguous", _extra(extras, "retry_on_ambiguous")),
        )
    except ImkitConfigurationError as exc:
        raise _error(conn_id, str(exc)) from None


def unknown_extras(extras: Mapping[str, Any]) -> list[str]:
    """Names in ``extra`` that the hook does not read (likely typos)."""
    known = set(KNOWN_EXTRAS) | {f"extra__imkit__{name}" for name in KNOWN_EXTRAS}
    return sorted(str(name) for name in extras if name not in known)
