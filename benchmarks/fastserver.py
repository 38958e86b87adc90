"""A minimal keep-alive HTTP server that answers every request with one canned IMKIT success.

It does next to nothing per request, so that client costs are not hidden behind the
server's. Run it in its own process (the benchmarks do) to keep it off the client's GIL:

    python -m benchmarks.fastserver --port 0     # prints the port, serves until killed
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading

RESULT = {
    "_id": "6b0c3a31d262081e4872aeb2",
    "room": "bench",
    "message": "benchmark message",
    "messageType": "text",
    "sender": "bot",
    "appID": "bench",
    "messageTimeMS": 1795962153130,
    "updatedAtMS": 1795962153130,
    "createdAtMS": 1795962153130,
}
BODY = json.dumps({"RC": 0, "RM": "OK", "result": RESULT}).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
    + BODY
)


def _serve_connection(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(buffer) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            buffer = buffer[length:]
            conn.sendall(RESPONSE)


def serve(port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_connection, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    serve(parser.parse_args().port)
    sys.exit(0)
