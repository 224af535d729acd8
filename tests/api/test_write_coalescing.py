"""One system call per response (idp.http.write_coalescing), with nothing held back or reordered."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from idp.http.write_coalescing import CoalescingHttpToolsProtocol, CoalescingTransport


class RecordingTransport(asyncio.Transport):
    """Stands in for the socket: what reached it, in which calls."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_writes_of_one_loop_step_leave_in_one_call() -> None:
    async def scenario() -> list[bytes]:
        sink = RecordingTransport()
        transport = CoalescingTransport(sink, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"ok")
        assert sink.writes == []  # still this step
        await asyncio.sleep(0)
        transport.write(b"next step")
        await asyncio.sleep(0)
        return sink.writes

    writes = asyncio.run(scenario())
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", b"next step"]


def test_close_and_large_bodies_do_not_wait_for_the_loop() -> None:
    async def scenario() -> None:
        sink = RecordingTransport()
        transport = CoalescingTransport(sink, asyncio.get_running_loop())
        transport.write(b"head")
        transport.write(b"x" * 70_000)  # over the threshold: out at once, in order
        assert sink.writes == [b"head" + b"x" * 70_000]
        transport.write(b"last")
        transport.close()
        assert sink.writes[-1] == b"last" and sink.closed
        await asyncio.sleep(0)  # the scheduled flush finds nothing to send
        assert len(sink.writes) == 2

    asyncio.run(scenario())


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = scope["path"].encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def coalescing_server() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        _app, host="127.0.0.1", port=port, http=CoalescingHttpToolsProtocol,
        log_config=None, lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_responses_over_real_http_are_whole_and_in_order(coalescing_server: str) -> None:
    with httpx.Client(base_url=coalescing_server) as client:  # one keep-alive connection
        for number in range(20):
            answer = client.get(f"/r{number}")
            assert answer.status_code == 200 and answer.text == f"/r{number}"
        streamed = client.get("/stream")
        assert streamed.text == "one,two,three"
        assert streamed.headers["transfer-encoding"] == "chunked"
        closing = client.get("/last", headers={"Connection": "close"})
        assert closing.text == "/last" and closing.headers["connection"] == "close"


def test_pipelined_requests_get_their_answers_in_order(coalescing_server: str) -> None:
    host, port = coalescing_server.removeprefix("http://").split(":")
    requests = b"".join(
        f"GET /p{number} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for number in range(5)
    )
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(requests + b"GET /end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := connection.recv(65_536):
            received += chunk
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in received.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"/p0", b"/p1", b"/p2", b"/p3", b"/p4", b"/end"]
