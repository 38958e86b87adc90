"""The sandbox's HTTP server: keep-alive, threaded, faults applied at the socket."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.sandbox.answers import JSON_TYPE, Answer, RequestRecord, fail, internal_error
from airflow_provider_imkit.sandbox.app import DEFAULT_RATE_LIMIT, SandboxApp
from airflow_provider_imkit.sandbox.pipeline import serve
from airflow_provider_imkit.sandbox.replies import AutoReply

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType

    from airflow_provider_imkit.sandbox.faults import Fault

log = logging.getLogger(__name__)

#: The default key: long enough for Airflow's secret masker (it skips secrets under 5 chars).
DEFAULT_API_KEY = "sandbox-key-3f9c1e7a5b2d4c6e"


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SandboxApp, errors: list[BaseException]) -> None:
        self.app = app
        self.errors = errors
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up between requests (a killed worker's keep-alive connection)
        is not an error; anything else is printed as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def drop_open_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def report(self, exc: BaseException, what: str) -> None:
        """Keep a sandbox bug for :meth:`ImkitSandbox.check`, and log it."""
        exc.add_note(f"(raised inside the IMKIT sandbox while answering {what})")
        log.error("IMKIT sandbox internal error while answering %s", what, exc_info=exc)
        with self.sockets_lock:
            self.errors.append(exc)


class _Handler(BaseHTTPRequestHandler):
    """One connection; each request on it is an :class:`~.faults.Exchange` for the pipeline."""

    protocol_version = "HTTP/1.1"
    # http.server writes headers and body in separate sends; without this, Nagle's algorithm
    # meets the client's delayed ACK and every keep-alive request stalls ~40 ms.
    disable_nagle_algorithm = True
    server_version = "imkit-sandbox"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server
    record: RequestRecord
    body: bytes = b""
    _started = False  # has any byte of the response been written?

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox: " + format, *args)

    # GET and POST only: no endpoint uses another method (http.server answers those 501).
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self.record = RequestRecord(self.command, self.path, key_present=False, key_valid=False)
        self._started = False
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            self.reply(fail(400, "INVALID_REQUEST", "Content-Length must be a non-negative integer"))
            return
        try:
            self.body = self.rfile.read(length) if length else b""
        except OSError:
            self.close_connection = True
            return
        try:
            serve(self.server.app, self)
        except Exception as exc:  # a bug in the sandbox: answer 500, keep it for check()
            self.server.report(exc, f"{self.command} {self.path.partition('?')[0]}")
            self.close_connection = True
            if not self._started:
                self.reply(internal_error(exc))

    # -- the Exchange protocol (see faults.py) --------------------------------------------------

    @property
    def method(self) -> str:
        return self.command

    @property
    def target(self) -> str:
        return self.path

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    def process(self) -> Answer:
        return self.server.app.handle(self.command, self.path, self.body)

    def wait_for_release(self, timeout: float) -> None:
        self.server.app.released.wait(timeout)

    def process_later(self, *, delay: float, reads: int) -> None:
        command, path, body = self.command, self.path, self.body
        self.server.app.later(lambda: self.server.app.handle(command, path, body), delay=delay, reads=reads)

    def reply(self, answer: Answer) -> None:
        self.send(answer.status, answer.encode(), JSON_TYPE, answer.headers)

    def send(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.record.status = status
        self._started = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self._client_gone()

    def write_raw(self, data: bytes) -> bool:
        self._started = True
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self._client_gone()
            return False
        return True

    def drop(self) -> None:
        self._started = True
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _client_gone(self) -> None:
        self.record.completed = False
        self.close_connection = True


class ImkitSandbox:
    """
    A local IMKIT-compatible server, for demos, tests and offline DAG development.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with ImkitSandbox(rooms=["ops"], users=["airflow-bot"]) as sandbox:
            os.environ["AIRFLOW_CONN_IMKIT_DEFAULT"] = sandbox.connection_json()
            ...
            assert sandbox.received("ops")[0]["message"] == "hello"
        sandbox.check()  # re-raise a bug the sandbox met while answering (it answered 500)

    :param host: interface to listen on (loopback by default).
    :param port: port to listen on; 0 picks a free one (see :attr:`url`).
    :param api_key: the API key clients must send (``IM-API-KEY``).
    :param rooms: room ids created up front.
    :param users: user ids created up front.
    :param rate_limit: requests per minute per key (None turns the limit off).
    :param retry_after_header: send ``Retry-After`` with a 429 as well as ``retryAfter``.
    :param auto_create: create unknown rooms and users on first use instead of answering 404.
    :param read_latency: seconds each room read is answered late (a loaded IMKIT); default 0.
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
        read_latency: float = 0.0,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.api_key, self.ssl_context = host, port, api_key, ssl_context
        #: The state and endpoints behind the server (advanced inspection).
        self.app = SandboxApp(
            [api_key], rate_limit=rate_limit, retry_after_header=retry_after_header,
            auto_create=auto_create, read_latency=read_latency, clock=clock,
        )  # fmt: skip
        users = list(users)
        for user in users:
            self.app.add_user(user)
        for room in rooms:
            self.app.add_room(room, members=users)
        self._errors: list[BaseException] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> ImkitSandbox:
        """Start serving in a background thread; returns self. ``OSError`` if the port is taken."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), self.app, self._errors)
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"imkit-sandbox-{self.port}"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread. Never raises a sandbox bug."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.app.released.set()
        server.app.cancel_later()
        server.drop_open_connections()
        server.server_close()  # joins the request threads (block_on_close)
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> ImkitSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the sandbox while answering (each was answered with a 500)."""
        return list(self._errors)

    def check(self) -> None:
        """Re-raise the first exception the sandbox met while answering, if any."""
        if self._errors:
            raise self._errors[0]

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

    def user(self, user_id: str) -> dict[str, Any]:
        """A copy of a user (``KeyError`` if there is none)."""
        with self.app.lock:
            return copy.deepcopy(self.app.users[user_id])

    def post_as(
        self,
        user: str,
        room: str,
        message: Any,
        *,
        message_type: str = "text",
        mentions: Iterable[str] = (),
        push: bool = True,
    ) -> dict[str, Any]:
        """
        Post a message as ``user`` (a person replying, say), stored as ``POST /messages`` would
        store it; returns the stored message. ``ValueError`` (code and message) when the API
        would refuse it, e.g. ``404 CLIENT_NOT_FOUND`` for an unknown user without ``auto_create``.
        """
        body = {"room": room, "sender": user, "message": message, "messageType": message_type}
        body.update({"mentions": list(mentions), "push": push})
        return copy.deepcopy(self.app.send_message(body))

    def auto_reply(
        self, room: str, user: str, text: str, match: str | None = None, *, on_read: bool = False
    ) -> None:
        """
        Script a person: the next message posted in ``room`` by someone else that mentions
        anyone (an approval question naming its approvers, say) is answered at once by
        ``user`` with ``text``. Each call answers one message; replies queued for the same
        room answer the same next question, in the order queued. With ``match``, only a
        question whose text contains it is answered (one run's question among several).
        ``on_read``: post right after the room's next read instead (a partner's bot, once a
        sensor watches). Over HTTP: ``POST /_sandbox/auto-replies`` with these fields.
        """
        self.app.add_auto_reply(AutoReply(room, user, text, match, on_read))

    def recall(self, room: str, message_id: str) -> dict[str, Any]:
        """Recall a message as its sender would (it stays, emptied, as ``messageType: recall``)."""
        return copy.deepcopy(self.app.recall(room, message_id))

    def inject(self, path: str, fault: Fault, times: int = 1) -> None:
        """Script the next ``times`` responses to ``path`` (``*``: any API path)."""
        self.app.add_fault(path, fault, times)

    def clear_faults(self) -> None:
        """Forget every scripted fault not yet used."""
        self.app.clear_faults()

    def release(self) -> None:
        """Let every answer a ``hold`` fault holds now go (a later ``hold`` holds again)."""
        self.app.released.set()
        self.app.released.clear()

    def flush_batches(self) -> None:
        """Deliver every queued ``POST /messages/batch`` now."""
        self.app.flush_batches()

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
        return self.app.request_log()

    def reset(self) -> None:
        """Forget messages, requests and faults; keep rooms, users, keys (and :attr:`errors`)."""
        self.app.reset()
