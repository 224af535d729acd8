"""The head limits ``hoviyat serve`` reads once reach every connection of its server, and two
servers in one process keep their own (idp.http.connection_guard, idp.serving)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import Receive, Scope, Send

from idp.http.connection_guard import ConnectionLimits
from idp.serving import ServeOptions


async def _ok(scope: Scope, _receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def _served(limits: ConnectionLimits) -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = ServeOptions("127.0.0.1", port, 1, limits).uvicorn_options()
    options.update(lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(uvicorn.Config(_ok, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _status_with_fields(port: int, fields: int) -> int:
    """The status of a GET carrying Host, Connection and ``fields`` more header fields."""
    extra = b"".join(b"X-Field-%d: 1\r\n" % index for index in range(fields))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n" + extra + b"\r\n")
        answer = b""
        while chunk := sock.recv(65_536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_attack_two_servers_in_one_process_each_enforce_their_own_header_limit() -> None:
    with _served(ConnectionLimits(max_headers=10)) as tight, _served(ConnectionLimits()) as loose:
        assert _status_with_fields(tight, 8) == 200  # 10 fields: the most allowed
        assert _status_with_fields(tight, 9) == 431
        assert _status_with_fields(loose, 9) == 200
        assert _status_with_fields(loose, 99) == 431
