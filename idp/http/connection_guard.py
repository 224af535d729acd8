"""Limits on how much of a request's head, and how slowly, a connection may send.

uvicorn's httptools protocol buffers a request line and headers of any size
(a 100 MB header took a worker from 148 to 439 MB) and waits forever for a
head that trickles in a byte at a time (slowloris) or for a body shorter than
its Content-Length. The ASGI layer sees a request only once its head is
complete, too late for either. Here the protocol itself:

- answers 431 (RFC 6585 §5) once the request line and headers exceed
  ``HOVIYAT_MAX_HEADER_BYTES`` or ``HOVIYAT_MAX_HEADERS`` fields, before
  reading more than one socket read past the limit;
- answers 408 (RFC 9110 §15.5.9) and closes when a head is not complete
  ``HOVIYAT_HEADER_TIMEOUT_SECONDS`` after it began (or after the connection
  opened), or when a body stalls for ``HOVIYAT_BODY_TIMEOUT_SECONDS``; a
  connection that never sent a byte is closed without an answer.

The answers are RFC 9457 problem documents with ``Connection: close``
(RFC 9112 §9.6): after them the connection's framing cannot be trusted.

``hoviyat serve`` reads the limits once and hands them to every connection's
protocol (:func:`bound_to`); a server given the bare class reads them from the
environment at each connection.
"""

from __future__ import annotations

import asyncio
import json
from asyncio import TimerHandle
from functools import partial
from typing import Any, TypeVar

import httptools
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from idp.problems import PROBLEM_MEDIA_TYPE, Problem

# Per header field: the ": " and CRLF around its name and value.
_FIELD_FRAMING = 4


class ConnectionLimits(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOVIYAT_", extra="ignore")

    max_header_bytes: int = Field(
        16_384,
        ge=1024,
        description="largest request line plus headers accepted; larger heads get 431",
    )
    max_headers: int = Field(100, ge=1, description="most header fields per request; more get 431")
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="time for a request line and headers to arrive once begun (or once "
        "the connection opened); later: 408 and the connection closed",
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="longest pause while a request body arrives; longer: 408 and the "
        "connection closed",
    )


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request already answered."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with caps on the head and timeouts on slow senders."""

    def __init__(self, *args: Any, limits: ConnectionLimits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits if limits is not None else ConnectionLimits()
        self._awaiting_head = True
        self._head_bytes = 0  # raw bytes received while the head is incomplete
        self._head_size = 0  # request target and header fields parsed so far
        self._head_fields = 0
        self._head_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None
        self._body_seen = 0.0
        self._refused = False

    # --- connection -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if self._refused:
                return
            self._malformed()
            return
        except httptools.HttpParserError:
            self._malformed()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._awaiting_head and self._head_bytes > self.limits.max_header_bytes:
            # One header still arriving: refuse before the parser holds more of it.
            self._refuse_head_too_large()

    def _malformed(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    # --- parser callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_head = True
        self._head_size = 0
        self._head_fields = 0
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)
        if self._head_size > self.limits.max_header_bytes:
            self._refuse_head_too_large()
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        self._head_size += len(name) + len(value) + _FIELD_FRAMING
        if (
            self._head_fields > self.limits.max_headers
            or self._head_size > self.limits.max_header_bytes
        ):
            self._refuse_head_too_large()
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        self._body_seen = self.loop.time()
        if self._body_timer is None:
            self._body_timer = self.loop.call_later(
                self.limits.body_timeout_seconds, self._body_timed_out
            )

    def on_body(self, body: bytes) -> None:
        self._body_seen = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._awaiting_head = True
        self._head_bytes = 0

    # --- timers -------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout_seconds, self._head_timed_out
            )

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head waits on our answer to the request before it.
            self._arm_head_timer()
            return
        if self._head_bytes == 0:
            self.transport.close()  # opened and never used
            return
        self._refuse(
            Problem(
                408,
                "request-timeout",
                "Request timeout",
                f"send the request line and headers within "
                f"{self.limits.header_timeout_seconds:g} s",
            )
        )

    def _body_timed_out(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or self.transport.is_closing():
            return
        timeout = self.limits.body_timeout_seconds
        idle = self.loop.time() - self._body_seen
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            # The application is not reading (yet): the pause is ours, not the sender's.
            self._body_seen = self.loop.time()
            idle = 0.0
        if idle < timeout:
            self._body_timer = self.loop.call_later(timeout - idle, self._body_timed_out)
            return
        if cycle.response_started:
            self.transport.close()
            return
        # The application's later sends go nowhere and its next receive() says disconnect.
        cycle.disconnected = True
        cycle.message_event.set()
        self._refuse(
            Problem(
                408,
                "request-timeout",
                "Request timeout",
                f"the body stopped arriving for {timeout:g} s before its declared length",
            )
        )

    # --- answers ------------------------------------------------------------------------

    def _refuse_head_too_large(self) -> None:
        self._refuse(
            Problem(
                431,
                "request-header-fields-too-large",
                "Request header fields too large",
                f"send at most {self.limits.max_header_bytes} bytes of request line and "
                f"headers in at most {self.limits.max_headers} fields",
            )
        )

    def _refuse(self, problem: Problem) -> None:
        """Answer ``problem`` and close: the rest of the connection's bytes are not read."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._awaiting_head = False
        self._cancel_timers()
        body = json.dumps(problem.to_dict()).encode()
        content = [STATUS_LINE[problem.status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


_Guarded = TypeVar("_Guarded", bound=GuardedHttpToolsProtocol)


def bound_to(protocol: type[_Guarded], limits: ConnectionLimits) -> partial[_Guarded]:
    """What uvicorn's ``http`` option takes: ``protocol`` built with ``limits`` for each
    connection. A partial, not a subclass made here, so that it pickles into the
    workers uvicorn spawns."""
    return partial(protocol, limits=limits)
