"""The deadline transport and what it relies on in urllib3 (pinned >=2,<3 in pyproject)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_imkit.client import transport
from airflow_provider_imkit.exceptions import ImkitConnectionError, ImkitTlsError


def test_urllib3_major_version_is_the_one_relied_on() -> None:
    assert urllib3.__version__.split(".")[0] == "2"
    # The hooks the adapter uses: pool classes by scheme, the pools' connection class, and
    # connect() setting self.sock (checked for real below).
    assert HTTPConnectionPool.ConnectionCls is HTTPConnection
    assert HTTPSConnectionPool.ConnectionCls is HTTPSConnection
    adapter = transport.DeadlineAdapter()
    assert adapter.poolmanager.pool_classes_by_scheme == transport._POOLS


@pytest.fixture
def trickle_server() -> Iterator[tuple[int, threading.Event]]:
    """A server that answers the status line one byte every 0.05 s, for ever (until stopped)."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                while not stop.is_set():
                    try:
                        conn.sendall(b"H")
                    except OSError:
                        break
                    time.sleep(0.05)

    thread = threading.Thread(target=serve)
    thread.start()
    yield listener.getsockname()[1], stop
    stop.set()
    thread.join()
    listener.close()


def test_each_read_stops_at_the_deadline(trickle_server: tuple[int, threading.Event]) -> None:
    port, _ = trickle_server
    session = requests.Session()
    session.mount("http://", transport.DeadlineAdapter(max_retries=0))
    with (
        pytest.raises(requests.exceptions.ReadTimeout),
        transport.deadline(time.monotonic() + 0.3),
    ):
        # A read timeout of 5 s per recv can never fire: a byte comes every 0.05 s. The
        # timeout raised can only be the deadline's (no timing assertion needed).
        session.get(f"http://127.0.0.1:{port}/", timeout=(1, 5))
    session.close()


def test_deadline_context_nests_and_restores() -> None:
    with transport.deadline(10.0):
        with transport.deadline(5.0):
            assert transport._local.at == 5.0
        assert transport._local.at == 10.0
    assert transport._local.at is None


def redact(text: str) -> str:
    return text.replace("KEY", "***")


@pytest.mark.parametrize(
    ("exc", "maybe_delivered", "permanent"),
    [
        (requests.exceptions.ConnectTimeout("x"), False, False),
        (requests.exceptions.ReadTimeout("x"), True, False),
        (requests.exceptions.ConnectionError("Connection aborted. RemoteDisconnected"), True, False),
        (requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"), False, True),
        (requests.exceptions.ChunkedEncodingError("x"), True, False),
    ],
)
def test_transport_error_classification(
    exc: requests.RequestException, maybe_delivered: bool, permanent: bool
) -> None:
    error = transport.transport_error("POST", "/messages", exc, redact)
    assert (error.maybe_delivered, error.permanent) == (maybe_delivered, permanent)


def test_plain_http_answer_to_tls_says_what_to_write() -> None:
    exc = requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    assumed = transport.transport_error("POST", "/messages", exc, redact, scheme_assumed=True)
    assert isinstance(assumed, ImkitTlsError) and assumed.permanent
    assert "https was assumed" in assumed.reason and "http://" in assumed.reason
    given = transport.transport_error("POST", "/messages", exc, redact, scheme_assumed=False)
    assert "https was assumed" not in given.reason and "http://" in given.reason


def test_refused_connection_is_not_delivered() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = requests.Session()
    session.mount("http://", transport.DeadlineAdapter(max_retries=0))
    with pytest.raises(requests.RequestException) as info:
        session.post(f"http://127.0.0.1:{port}/messages", data=b"{}", timeout=2)
    error = transport.transport_error("POST", "/messages", info.value, redact)
    assert isinstance(error, ImkitConnectionError) and error.maybe_delivered is False
    assert error.reason.startswith("cannot connect")
    session.close()
