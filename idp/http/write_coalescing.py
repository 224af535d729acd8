"""One ``send()`` per response: uvicorn's httptools protocol with its writes coalesced.

uvicorn writes a response's status line and headers when the application
sends ``http.response.start`` and the body when it sends
``http.response.body``: two system calls and, on a keep-alive connection, two
TCP segments for every answer, each read separately by the client. Under load
those calls were a sixth of a worker's time holding the GIL. Here the
protocol's transport keeps what is written during one step of the event loop
and hands it to the socket in one call: when the response completes, before
the connection closes, once 64 KiB are waiting, or at the loop's next turn
(a streaming response), whichever comes first. Nothing is reordered and
nothing waits longer than the step that wrote it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl

from idp.http.connection_guard import GuardedHttpToolsProtocol

# Past this a write goes out at once, so a large body is not copied again.
_FLUSH_BYTES = 64 * 1024


class CoalescingTransport:
    """A stream transport whose writes leave together at the end of the loop step."""

    __slots__ = ("_loop", "_pending", "_pending_bytes", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        if self._pending_bytes >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        pending = self._pending
        self._pending = []
        self._pending_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()  # an upgraded protocol writes after what is already queued
        self._transport.set_protocol(protocol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(GuardedHttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response with one system call, with
    the head and timing limits of :mod:`idp.http.connection_guard`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)  # type: ignore[arg-type]
        # Read pauses go straight to the socket's transport.
        self.flow = FlowControl(transport)

    def on_response_complete(self) -> None:
        # The whole response is queued: send it now rather than at the loop's next turn.
        transport = self.transport
        if isinstance(transport, CoalescingTransport):
            transport.flush()
        super().on_response_complete()
