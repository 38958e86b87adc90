"""The sandbox's HTTP server: keep-alive, threaded, faults applied at the socket."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.sandbox.app import DEFAULT_RATE_LIMIT, Answer, SandboxApp, fail
from airflow_provider_imkit.sandbox.faults import Fault
from airflow_provider_imkit.sandbox.inbox import render_inbox

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Iterable
    from types import TracebackType

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sandbox/"
#: The default key: long enough for Airflow's secret masker (it skips secrets under 5 chars).
DEFAULT_API_KEY = "sandbox-key-3f9c1e7a5b2d4c6e"

_HTML_ERROR = (
    "<!DOCTYPE html><html><head><title>{status} Bad Gateway</title></head>"
    "<body><center><h1>{status} Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        self.app = app
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def drop_open_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes headers and body in separate sends; without this, Nagle's algorithm
    # meets the client's delayed ACK and every keep-alive request stalls ~40 ms.
    disable_nagle_algorithm = True
    server_version = "imkit-sandbox"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- plumbing -----------------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, answer: Answer) -> None:
        self._send(answer.status, answer.encode(), "application/json; charset=utf-8", answer.headers)

    def _drop(self) -> None:
        """Close the connection without a response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self) -> None:
        app = self.server.app
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        method = self.command
        path = self.path.partition("?")[0]
        if method == "GET" and path in ("/", "/index.html"):
            self._send(200, render_inbox(app).encode("utf-8"), "text/html; charset=utf-8")
            return
        record = app.authenticate(self.headers)
        record.method, record.path = method, path
        denial = app.auth_failure(record)
        if path.startswith(CONTROL_PREFIX):
            self._answer(denial or _control(app, method, path[len(CONTROL_PREFIX) :], body))
            return
        with app.lock:
            app.records.append(record)
        fault = None if denial else app.next_fault(path)
        if denial is None and fault is None:
            denial = app.rate_limited(self.headers.get("IM-API-KEY", ""))
        if denial is not None:
            record.status = denial.status
            self._answer(denial)
            return
        if fault is None:
            answer = app.handle(method, self.path, body)
            record.status = answer.status
            self._answer(answer)
            return
        record.fault = fault.kind
        self._apply(fault, record, method, body)

    def _apply(self, fault: Fault, record: Any, method: str, body: bytes) -> None:
        app = self.server.app
        kind = fault.kind
        if kind == "delay":
            time.sleep(fault.delay)
            answer = app.handle(method, self.path, body)
            record.status = answer.status
            self._answer(answer)
        elif kind == "close_before":
            self._drop()
        elif kind == "close_after":
            app.handle(method, self.path, body)
            self._drop()
        elif kind == "trickle":
            # The whole answer, status line and headers included, one byte at a time.
            answer = app.handle(method, self.path, body)
            record.status = answer.status
            payload = answer.encode()
            head = (
                f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('',))[0]}\r\n"
                "Content-Type: application/json; charset=utf-8\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode("latin-1")
            raw = head + payload
            for index in range(len(raw)):
                time.sleep(fault.delay)
                try:
                    self.wfile.write(raw[index : index + 1])
                    self.wfile.flush()
                except OSError:
                    record.completed = False
                    self.close_connection = True
                    return
        elif kind == "status":
            record.status = fault.status or 0
            is_json = isinstance(fault.body, dict | list)
            content_type = "application/json; charset=utf-8" if is_json else "text/plain; charset=utf-8"
            self._send(fault.status or 500, fault.body_bytes(), content_type, fault.headers)
        elif kind == "malformed_json":
            record.status = 200
            self._send(200, b'{"RC": 0, "RM": "OK", "result": {"_id": "', "application/json; charset=utf-8")
        elif kind == "html":
            status = fault.status or 502
            record.status = status
            self._send(status, _HTML_ERROR.format(status=status).encode(), "text/html; charset=utf-8")
        elif kind == "rc_error":
            record.status = 200
            self._answer(
                Answer(
                    200,
                    {
                        "RC": fault.rc,
                        "RM": "Internal error",
                        "error": {"code": "INTERNAL_ERROR", "message": "Something went wrong"},
                    },
                )
            )
        elif kind == "empty":
            record.status = 200
            self._send(200, b"", "application/json; charset=utf-8")


def _control(app: SandboxApp, method: str, action: str, body: bytes) -> Answer:
    """The inspection and fault-injection API under /_sandbox/ (same key as the API)."""
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError:
        return fail(400, "INVALID_REQUEST", "Body is not valid JSON")
    if method == "GET" and action == "rooms":
        return Answer(200, {"RC": 0, "RM": "OK", "result": app.received()})
    if method == "GET" and action == "requests":
        with app.lock:
            records = [r.to_json() for r in app.records]
        return Answer(
            200, {"RC": 0, "RM": "OK", "result": {"counts": app.request_counts(), "requests": records}}
        )
    if method == "POST" and action == "faults":
        try:
            times = int(data.pop("times", 1))
            path = str(data.pop("path"))
            app.add_fault(path, Fault.from_json(data), times)
        except (KeyError, TypeError, ValueError) as exc:
            return fail(400, "INVALID_REQUEST", f"Bad fault: {exc}")
        return Answer(200, {"RC": 0, "RM": "OK", "result": {"path": path, "times": times}})
    if method == "POST" and action == "reset":
        app.reset()
        return Answer(200, {"RC": 0, "RM": "OK", "result": {}})
    if method == "POST" and action == "flush":
        app.flush_batches()
        return Answer(200, {"RC": 0, "RM": "OK", "result": {}})
    return fail(404, "NOT_FOUND", f"No sandbox control {method} /_sandbox/{action}")


class ImkitSandbox:
    """
    A local IMKIT-compatible server, for demos, tests and offline DAG development.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with ImkitSandbox(rooms=["ops"], users=["airflow-bot"]) as sandbox:
            os.environ["AIRFLOW_CONN_IMKIT_DEFAULT"] = sandbox.connection_json()
            ...
            assert sandbox.received("ops")[0]["message"] == "hello"

    :param host: interface to listen on (loopback by default).
    :param port: port to listen on; 0 picks a free one (see :attr:`url`).
    :param api_key: the API key clients must send (``IM-API-KEY``).
    :param rooms: room ids created up front.
    :param users: user ids created up front.
    :param rate_limit: requests per minute per key (None turns the limit off).
    :param retry_after_header: send ``Retry-After`` with a 429 as well as ``retryAfter``.
    :param auto_create: create unknown rooms and users on first use instead of answering 404.
    :param clock: a ``time.time``-like function for timestamps and the rate limit.
    :param ssl_context: serve HTTPS with this server-side context (for TLS tests).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        rooms: Iterable[str] = (),
        users: Iterable[str] = (),
        rate_limit: int | None = DEFAULT_RATE_LIMIT,
        retry_after_header: bool = False,
        auto_create: bool = False,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.ssl_context = ssl_context
        self.port = port
        self.api_key = api_key
        self.app = SandboxApp(
            [api_key],
            rate_limit=rate_limit,
            retry_after_header=retry_after_header,
            auto_create=auto_create,
            clock=clock,
        )
        for user in users:
            self.app.add_user(user)
        for room in rooms:
            self.app.add_room(room, members=list(users))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> ImkitSandbox:
        """Start serving in a background thread; returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self.app)
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"imkit-sandbox-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.drop_open_connections()
        server.server_close()  # joins the request threads (block_on_close)
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> ImkitSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:43121``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    def connection_json(self) -> str:
        """The value for ``AIRFLOW_CONN_<ID>`` pointing at this sandbox (JSON form)."""
        return json.dumps({"conn_type": "imkit", "host": self.url, "password": self.api_key})

    # -- setup, faults and inspection ---------------------------------------------------------

    def add_room(self, room_id: str, name: str | None = None, members: Iterable[str] = ()) -> dict[str, Any]:
        """Create (or replace) a room."""
        return self.app.add_room(room_id, name, list(members))

    def add_user(self, user_id: str, nickname: str | None = None) -> dict[str, Any]:
        """Create or update a user."""
        return self.app.add_user(user_id, nickname)

    def inject(self, path: str, fault: Fault, times: int = 1) -> None:
        """Script the next ``times`` responses to ``path`` (``*``: any API path)."""
        self.app.add_fault(path, fault, times)

    def received(self, room: str) -> list[dict[str, Any]]:
        """Every message the room received, oldest first, with ``push`` and ``mentions`` as sent."""
        result = self.app.received(room)
        assert isinstance(result, list)
        return result

    def all_received(self) -> dict[str, list[dict[str, Any]]]:
        """Messages of every room."""
        result = self.app.received()
        assert isinstance(result, dict)
        return result

    def request_counts(self) -> dict[str, int]:
        """Requests seen per ``"METHOD /path"`` (control and inbox requests not included)."""
        return self.app.request_counts()

    def requests(self) -> list[dict[str, Any]]:
        """Every API request: method, path, key_present, key_valid, status, fault. Never the key."""
        with self.app.lock:
            return [r.to_json() for r in self.app.records]

    def reset(self) -> None:
        """Forget messages, requests and faults; keep rooms, users and keys."""
        self.app.reset()
