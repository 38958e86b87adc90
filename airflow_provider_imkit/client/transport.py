"""HTTP transport for the client: a requests adapter whose sockets honour a hard deadline.

requests' read timeout bounds each wait for bytes, not the whole response: a server (or a
proxy) that trickles one byte at a time can hold a request open for ever. The adapter here
wraps every pooled socket so that each read (status line, headers and body alike) and each
send also stops at the deadline of the call in progress, set per thread with
:func:`deadline`. No thread is started for it.

It also classifies requests' exceptions into :class:`ImkitConnectionError`, telling
whether the request may have reached the server.

It relies on urllib3 2.x internals (``ConnectionCls`` of the pools, ``pool_classes_by_scheme``
of the pool managers, ``connect()`` setting ``self.sock``, responses read through
``sock.makefile("rb")``): pyproject bounds urllib3 to ``>=2,<3`` and tests/unit/test_transport.py
checks each of them.
"""

from __future__ import annotations

import io
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from airflow_provider_imkit.exceptions import ImkitConnectionError, ImkitTlsError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_imkit.client.settings import ImkitSettings

_local = threading.local()


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Make socket I/O of this thread's IMKIT requests stop at ``at`` (``time.monotonic()``)."""
    previous = getattr(_local, "at", None)
    _local.at = at
    try:
        yield
    finally:
        _local.at = previous


def _bounded(sock: Any) -> float | None:
    """Shrink the socket timeout to what is left before the deadline; return the old one."""
    at = getattr(_local, "at", None)
    base = sock.gettimeout()
    if at is None:
        return base
    remaining = at - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("IMKIT deadline reached")
    sock.settimeout(remaining if base is None else min(base, remaining))
    return base


class _DeadlineReader(io.RawIOBase):
    """A socket's read side whose every ``recv`` stops at the thread's deadline."""

    def __init__(self, sock: Any) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        base = _bounded(self._sock)
        try:
            return int(self._sock.recv_into(buffer))
        finally:
            self._sock.settimeout(base)

    def fileno(self) -> int:
        return int(self._sock.fileno())


class _DeadlineSocket:
    """Delegates to a (TLS) socket; reads through ``makefile`` and sends honour the deadline."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def makefile(self, mode: str = "r", buffering: int | None = None, **kwargs: Any) -> Any:
        if mode != "rb":
            return self._sock.makefile(mode, buffering, **kwargs)
        return io.BufferedReader(_DeadlineReader(self._sock), buffering or io.DEFAULT_BUFFER_SIZE)

    def sendall(self, data: Any, *flags: Any) -> None:
        base = _bounded(self._sock)
        try:
            self._sock.sendall(data, *flags)
        finally:
            self._sock.settimeout(base)


class _HTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _HTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' HTTPAdapter (pooling, TLS, proxies) with deadline-aware sockets."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


#: What OpenSSL says when the server answers a TLS hello in plain HTTP.
_PLAIN_HTTP_SIGNS = (
    "wrong version number",
    "wrong_version_number",
    "record layer failure",
    "unknown protocol",
)


def _plain_http_answer(exc: BaseException) -> bool:
    text = " ".join(str(c) for c in _causes(exc)).lower()
    return any(sign in text for sign in _PLAIN_HTTP_SIGNS)


def _tls_reason(detail: str, plain_http: bool, scheme_assumed: bool, base_url: str | None) -> str:
    if plain_http and scheme_assumed:
        example = f" ({base_url.replace('https://', 'http://', 1)})" if base_url else ""
        return (
            "TLS error: the Base URL has no scheme, so https was assumed, but the server answered "
            f"plain HTTP; write http:// in the connection's Base URL{example}, or end an "
            "imkit:// URI with /http"
        )
    if plain_http:
        return "TLS error: the server answered plain HTTP to https; use http:// in the connection's Base URL"
    return f"TLS error: {detail}"


def transport_error(
    method: str,
    path: str,
    exc: requests.RequestException,
    redact: Callable[[str], str],
    scheme_assumed: bool = False,
    base_url: str | None = None,
) -> ImkitConnectionError:
    """Classify a requests exception: could the request have reached the server?

    TLS failures (certificates, or plain HTTP answering https) are :class:`ImkitTlsError`:
    permanent, and worded for what to fix (``scheme_assumed``: the Base URL had no scheme;
    ``base_url``: the one the request went to, for the http:// hint).
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ImkitConnectionError(method, path, "connect timeout", maybe_delivered=False)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return ImkitConnectionError(
            method, path, "read timeout: the server may have processed the request", maybe_delivered=True
        )
    if isinstance(exc, requests.exceptions.SSLError) or _plain_http_answer(exc):
        return ImkitTlsError(
            method, path, _tls_reason(redact(str(exc)), _plain_http_answer(exc), scheme_assumed, base_url)
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        refused = next((c for c in _causes(exc) if isinstance(c, NewConnectionError)), None)
        if refused is not None:
            return ImkitConnectionError(
                method,
                path,
                f"cannot connect: {redact(_without_object(str(refused)))}",
                maybe_delivered=False,
            )
        if any(isinstance(c, TimeoutError | socket.timeout) for c in _causes(exc)):
            return ImkitConnectionError(
                method,
                path,
                "timed out after sending: the server may have processed the request",
                maybe_delivered=True,
            )
        return ImkitConnectionError(
            method,
            path,
            f"connection lost after sending; the server may have processed the request: {redact(str(exc))}",
            maybe_delivered=True,
        )
    return ImkitConnectionError(method, path, redact(f"{type(exc).__name__}: {exc}"), maybe_delivered=True)


def _without_object(text: str) -> str:
    """urllib3 starts the text with the connection object's repr (``<urllib3.connection.
    HTTPConnection object at 0x...>: ``): internal, and no help to a reader."""
    return re.sub(r"^<[^<>]+>: ", "", text)


def _causes(exc: BaseException) -> list[BaseException]:
    """The chain below a requests error: its wrapped urllib3 error, that one's reason..."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        reason = getattr(current, "reason", None)
        first_arg = current.args[0] if current.args else None
        if isinstance(reason, BaseException):
            current = reason
        elif isinstance(first_arg, BaseException):
            current = first_arg
        else:
            current = current.__cause__ or current.__context__
    return chain


def new_session(settings: ImkitSettings, user_agent: str) -> requests.Session:
    """A pooled session for one thread: the deadline adapter, the API key header, and the
    proxy and TLS settings read once (not from the environment per request)."""
    session = requests.Session()
    adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(
        {
            "IM-API-KEY": settings.api_key,
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
    )
    # Read the environment once per session, not on every request: requests would scan
    # every environment variable for proxies per call (a large share of its cost in an
    # Airflow worker), consult ~/.netrc, and let REQUESTS_CA_BUNDLE override an explicit
    # verify=False or CA bundle.
    session.trust_env = False
    if settings.proxy:
        session.proxies = {"http": settings.proxy, "https": settings.proxy}
    else:
        session.proxies = _environ_proxies(settings.base_url)
    session.verify = _effective_verify(settings.verify)
    return session


def without_frames(exc: BaseException) -> BaseException:
    """``exc`` and the exceptions chained to it, stripped of their tracebacks.

    The frames of requests and urllib3 hold the request's headers, the ``IM-API-KEY`` among
    them, as local variables; a renderer that shows locals (Airflow 3.0's rich tracebacks in
    ``airflow dags test``) would print the key. The messages stay; only the frames go.
    """
    seen: set[int] = set()
    pending = [exc]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        link.__traceback__ = None
        pending.extend(e for e in (link.__cause__, link.__context__) if e is not None)
    return exc


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
