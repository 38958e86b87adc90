"""Turn a connection's fields (an Airflow connection's, or the client's arguments) into checked settings.

Pure functions of the fields, so they are tested as a table without HTTP. No Airflow in here.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_imkit.client.retry import ON_AMBIGUOUS_CHOICES, RetryPolicy
from airflow_provider_imkit.exceptions import ImkitConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_DEADLINE = 120.0

#: Connection extras the settings read; get_provider_info's form table describes each one
#: (tests/unit/test_provider.py keeps the two in step). Nothing else in ``extra`` is used.
KNOWN_EXTRAS = (
    "timeout",
    "connect_timeout",
    "read_timeout",
    "deadline",
    "max_attempts",
    "backoff",
    "max_backoff",
    "max_retry_after",
    "on_ambiguous",
    "read_back_settle",
    "retry_on_ambiguous",
    "proxy",
    "verify",
    "ca_bundle",
)

_warned_plain_http: set[str] = set()


@dataclass(frozen=True)
class ImkitSettings:
    """
    Everything the hook needs to talk to one IMKIT server.

    ``api_key`` is excluded from ``repr`` so that printing the settings never shows it.

    :param conn_id: the Airflow connection id (named in errors); any label outside Airflow.
    :param base_url: the API's base URL, without a trailing slash.
    :param api_key: the platform API key, sent as ``IM-API-KEY``.
    :param timeout: ``(connect, read)`` seconds for each HTTP attempt.
    :param deadline: seconds one call may take in all, retries and waits included.
    :param verify: TLS verification: True, False or a CA bundle path.
    :param proxy: an HTTP(S) proxy URL, or None.
    :param retry: the retry policy.
    :param scheme_assumed: True when the Base URL had no scheme and https was assumed (an
        error then says to write ``http://`` if the server speaks plain HTTP).
    """

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    timeout: tuple[float, float] = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    deadline: float = DEFAULT_DEADLINE
    verify: bool | str = True
    proxy: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    scheme_assumed: bool = False


def _error(conn_id: str, problem: str) -> ImkitConfigurationError:
    return ImkitConfigurationError(f"IMKIT connection {conn_id!r}: {problem}")


def base_url_from(
    conn_id: str, host: str | None, schema: str | None, port: int | None, conn_type: str | None = None
) -> str:
    """
    Build the API base URL from a connection's host, schema, port and type.

    ``host`` may be a full URL (``https://app.imkit.io``, ``http://127.0.0.1:8099/api``) or
    a bare host name; then the scheme comes from :func:`scheme_for` (default ``https``). For
    a connection of type ``http``/``https`` (a URI ``http://:KEY@host:port/prefix``) a schema
    that is not a scheme is the URL's path prefix. ``port`` is added when the host does not
    carry one. Trailing slashes are removed.
    """
    host = (host or "").strip()
    if not host:
        raise _error(conn_id, "no host: set the Base URL, e.g. https://<app>.imkit.io")
    if "://" in host:
        parts = urlsplit(host)
        scheme = parts.scheme.lower()
    else:
        scheme = scheme_for(schema, conn_type) or "https"
        prefix = (schema or "").strip().strip("/")
        if _is_http_type(conn_type) and prefix and prefix.lower() != scheme:
            host = f"{host.rstrip('/')}/{prefix}"
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


def _is_http_type(conn_type: str | None) -> bool:
    return (conn_type or "").strip().lower() in ("http", "https")


def scheme_for(schema: str | None, conn_type: str | None) -> str | None:
    """
    The scheme a bare host gets: a connection of type ``http``/``https`` takes its schema
    when that is ``http`` or ``https`` (HttpHook's convention), else its type; any other
    connection takes its schema (the URI ``imkit://:KEY@host:port/http``). None: not given.
    """
    schema = (schema or "").strip().lower()
    if _is_http_type(conn_type):
        return schema if schema in ("http", "https") else (conn_type or "").strip().lower()
    return schema or None


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


def _float(conn_id: str, name: str, value: Any, *, zero: bool = False) -> float | None:
    """A number of seconds from an extra: positive (or, with ``zero``, not negative)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _error(conn_id, f"extra {name!r} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        what = "0 or more" if zero else "a positive number of"
        raise _error(conn_id, f"extra {name!r} must be {what} seconds, got {value!r}")
    return number


_BOOL_WORDS = ("true", "1", "yes", "on", "false", "0", "no", "off")


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
    """TLS verification: on by default; ``verify`` false turns it off; ``ca_bundle`` (or a path
    given as ``verify``) names a CA bundle."""
    bundle = _extra(extras, "ca_bundle")
    verify = _extra(extras, "verify")
    verify_on = verify is None or (
        (isinstance(verify, bool) or str(verify).strip().lower() in _BOOL_WORDS)
        and _bool(conn_id, "verify", verify) is True
    )
    if bundle is not None and verify_on:
        if not isinstance(bundle, str) or not bundle.strip():
            raise _error(conn_id, f"extra 'ca_bundle' must be the path of a CA bundle, got {bundle!r}")
        return bundle.strip()
    if verify is None:
        return True
    if isinstance(verify, str) and verify.strip().lower() not in _BOOL_WORDS:
        return verify.strip()  # a CA bundle path, the older spelling of ca_bundle
    if _bool(conn_id, "verify", verify) is False:
        log.warning("IMKIT connection %r: TLS certificate verification is OFF (extra verify=false)", conn_id)
        return False
    return True


def retry_from(conn_id: str, extras: Mapping[str, Any], base: RetryPolicy | None = None) -> RetryPolicy:
    """Apply the retry extras on top of ``base`` (default: the default policy)."""
    attempts = _extra(extras, "max_attempts")
    if attempts is not None:
        try:
            attempts = int(attempts)
        except (TypeError, ValueError):
            raise _error(conn_id, f"extra 'max_attempts' must be a whole number, got {attempts!r}") from None
    on_ambiguous = _extra(extras, "on_ambiguous")
    if on_ambiguous is not None and str(on_ambiguous).strip().lower() not in ON_AMBIGUOUS_CHOICES:
        raise _error(
            conn_id,
            f"extra 'on_ambiguous' must be one of {', '.join(ON_AMBIGUOUS_CHOICES)}, got {on_ambiguous!r}",
        )
    if on_ambiguous is None and _bool(conn_id, "retry_on_ambiguous", _extra(extras, "retry_on_ambiguous")):
        on_ambiguous = "resend"
    overrides = {
        "max_attempts": attempts,
        "backoff": _float(conn_id, "backoff", _extra(extras, "backoff")),
        "max_backoff": _float(conn_id, "max_backoff", _extra(extras, "max_backoff")),
        "max_retry_after": _float(conn_id, "max_retry_after", _extra(extras, "max_retry_after")),
        "settle": _float(conn_id, "read_back_settle", _extra(extras, "read_back_settle"), zero=True),
        "on_ambiguous": str(on_ambiguous).strip().lower() if on_ambiguous is not None else None,
    }
    try:  # the extras' own errors name the connection already; the policy's checks do not
        return (base or RetryPolicy()).with_overrides(**overrides)
    except ImkitConfigurationError as exc:
        raise _error(conn_id, str(exc)) from None


def unknown_extras(extras: Mapping[str, Any]) -> list[str]:
    """Names in ``extra`` that the hook does not read (likely typos)."""
    known = set(KNOWN_EXTRAS) | {f"extra__imkit__{name}" for name in KNOWN_EXTRAS}
    return sorted(str(name) for name in extras if name not in known)


def settings_from(
    conn_id: str,
    *,
    host: str | None,
    password: str | None,
    schema: str | None = None,
    port: int | None = None,
    conn_type: str | None = None,
    extras: Mapping[str, Any] | None = None,
    timeout: float | tuple[float, float] | None = None,
    deadline: float | None = None,
    retry: RetryPolicy | None = None,
) -> ImkitSettings:
    """
    Everything a client needs, from a connection's fields and the caller's overrides.

    ``timeout``, ``deadline`` and ``retry`` given here win over the extras; a ``retry``
    policy replaces the retry extras as a whole.

    :raises ImkitConfigurationError: a field or extra is unusable; the text names it.
    """
    extras = extras or {}
    return ImkitSettings(
        conn_id=conn_id,
        base_url=base_url_from(conn_id, host, schema, port, conn_type),
        api_key=api_key_from(conn_id, password),
        timeout=timeout_from(conn_id, extras, timeout),
        deadline=deadline_from(conn_id, extras, deadline),
        verify=verify_from(conn_id, extras),
        proxy=proxy_from(extras),
        retry=retry if retry is not None else retry_from(conn_id, extras),
        scheme_assumed="://" not in (host or "") and scheme_for(schema, conn_type) is None,
    )


def parse_extra(conn_id: str, extra: str | None) -> dict[str, Any]:
    """A connection's ``extra`` text as a dict; raises naming the connection when it is not one."""
    try:
        extras = json.loads(extra) if extra else {}
    except ValueError:
        raise _error(conn_id, "the extra is not valid JSON") from None
    if not isinstance(extras, dict):
        raise _error(conn_id, "the extra must be a JSON object")
    return extras


@functools.lru_cache(maxsize=64)
def cached_settings(
    conn_id: str,
    fields: tuple[Any, ...],
    timeout: float | tuple[float, float] | None,
    deadline: float | None,
    retry: RetryPolicy | None,
) -> ImkitSettings:
    """
    :func:`settings_from` for a connection's exact ``(host, password, schema, port, conn_type,
    extra)``, parsed once per process: a hook per message, or per callback in the DAG
    processor, reuses them, and a changed field is a new key.
    """
    host, password, schema, port, conn_type, extra = fields
    return settings_from(
        conn_id,
        host=host,
        password=password,
        schema=schema,
        port=port,
        conn_type=conn_type,
        extras=parse_extra(conn_id, extra),
        timeout=timeout,
        deadline=deadline,
        retry=retry,
    )
