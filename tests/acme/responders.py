"""Loopback servers ACME validation is tested against: DNS, http-01, tls-alpn-01.

Each runs in a daemon thread on a 127.0.0.x address, so names can point at
loopback through the validator's configurable resolver without touching the
system's DNS. Port 0 picks a free port (see ``.port`` after ``start()``).
No pytest here: bench/ scripts load this file by path.

- :class:`LoopbackDns`: A, AAAA, TXT and CNAME records set at run time, over
  UDP and TCP on one port; names can also be made to SERVFAIL or go unanswered.
- :class:`Http01Responder`: serves ``/.well-known/acme-challenge/<token>`` and
  whatever misbehaviour a test sets (redirects, huge or slow bodies).
- :class:`TlsAlpnResponder`: answers ALPN ``acme-tls/1`` handshakes with the
  RFC 8737 certificate of each name (or a deliberately wrong one).
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import ipaddress
import socket
import socketserver
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSHandler, DNSLogger, DNSServer

# ----------------------------------------------------------------------- DNS


def _serve_in_thread(server: socketserver.BaseServer) -> None:
    # A short poll interval: stop() (shutdown) waits for one poll.
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


class _Zone:
    """Records by (name, type); thread-safe, read by the server's handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[tuple[str, str], list[str | bytes]] = {}
        self.servfail: set[str] = set()
        self.silent: set[str] = set()
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = _norm(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((qname, qtype))
            if qname in self.silent:
                raise DNSError("silent name: no reply")  # the client times out
            if qname in self.servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            name = qname
            for _ in range(8):  # follow CNAMEs inside the zone, as a recursor would
                values = self.records.get((name, qtype))
                if values:
                    for value in values:
                        reply.add_answer(_rr(name, qtype, value))
                    return reply
                target = self.records.get((name, "CNAME"))
                if not target or qtype == "CNAME":
                    break
                reply.add_answer(_rr(name, "CNAME", target[0]))
                name = _norm(str(target[0]))
            if not any(key[0] == name for key in self.records):
                reply.header.rcode = RCODE.NXDOMAIN
            return reply


def _rr(name: str, rtype: str, value: str | bytes) -> RR:
    rdata: Any
    if rtype == "TXT":
        raw = value.encode() if isinstance(value, str) else value
        # One character-string holds at most 255 octets (RFC 1035 §3.3.14).
        rdata = TXT([raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""])
        return RR(name, QTYPE.TXT, rdata=rdata, ttl=0)
    assert isinstance(value, str)
    if rtype == "A":
        rdata = A(value)
    elif rtype == "AAAA":
        # Through ipaddress: dnslib's own parser refuses "::ffff:1.2.3.4".
        rdata = AAAA(tuple(ipaddress.IPv6Address(value).packed))
    elif rtype == "CNAME":
        rdata = CNAME(value)
    else:
        raise ValueError(f"record type {rtype} not served")
    return RR(name, getattr(QTYPE, rtype), rdata=rdata, ttl=0)


class _QuietLogger(DNSLogger):
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error")


class _TruncatingHandler(DNSHandler):
    """Answers over 512 octets on UDP come back truncated (RFC 1035 §4.2.1), so
    clients retry on TCP. dnslib's own truncate() drops the question, which a
    careful client rightly refuses as an answer to another question."""

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed: bytes = reply.pack()
        if self.protocol == "udp" and len(packed) > 512:
            truncated = request.reply()
            truncated.header.tc = 1
            packed = truncated.pack()
        return packed


class LoopbackDns:
    """A DNS server on ``address``: UDP and TCP on the same port."""

    def __init__(self, address: str = "127.0.0.40", port: int = 0) -> None:
        self.address = address
        self.port = port
        self.zone = _Zone()
        self._servers: list[DNSServer] = []

    @property
    def resolver(self) -> str:
        """The ``host:port`` to put in ``HOVIYAT_ACME_DNS_RESOLVER``."""
        return f"{self.address}:{self.port}"

    def set(self, name: str, rtype: str, *values: str | bytes) -> None:
        """Replace the ``rtype`` records of ``name`` (no values: remove them)."""
        with self.zone.lock:
            if values:
                self.zone.records[(_norm(name), rtype)] = list(values)
            else:
                self.zone.records.pop((_norm(name), rtype), None)

    def point(self, name: str, address: str) -> None:
        """``name`` resolves to ``address`` (A or AAAA by its form), nothing else."""
        self.set(name, "AAAA" if ":" in address else "A", address)

    def servfail(self, name: str) -> None:
        with self.zone.lock:
            self.zone.servfail.add(_norm(name))

    def silence(self, name: str) -> None:
        """Queries for ``name`` get no reply at all."""
        with self.zone.lock:
            self.zone.silent.add(_norm(name))

    def queries(self) -> list[tuple[str, str]]:
        with self.zone.lock:
            return list(self.zone.queries)

    def start(self) -> LoopbackDns:
        for _ in range(20):  # a free UDP port whose TCP twin is also free
            udp = DNSServer(
                self.zone,
                self.address,
                self.port,
                logger=_QuietLogger(),
                handler=_TruncatingHandler,
            )
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self.zone, self.address, port, tcp=True, logger=_QuietLogger())
            except OSError:
                udp.server.server_close()
                if self.port:
                    raise
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                _serve_in_thread(server.server)
            return self
        raise OSError("no free port pair for the loopback DNS server")

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> LoopbackDns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------ http-01

CHALLENGE_PATH = "/.well-known/acme-challenge/"

# A handler gets the request handler and writes the whole response itself.
HttpBehaviour = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class _HttpState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    behaviours: dict[str, HttpBehaviour] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (Host, path)
    in_flight: int = 0
    most_in_flight: int = 0
    holds: dict[str, threading.Event] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)  # body octets written, by path


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        with state.lock:
            state.requests.append((self.headers.get("Host", ""), path))
            state.in_flight += 1
            state.most_in_flight = max(state.most_in_flight, state.in_flight)
            behaviour = state.behaviours.get(path)
        try:
            if behaviour is None:
                self.send_error(404)
            else:
                behaviour(self)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with state.lock:
                state.in_flight -= 1
        self.close_connection = True


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    state: _HttpState


def _respond(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)


class Http01Responder:
    """An http-01 server on ``address:port``: what each path answers is set at run time."""

    def __init__(self, address: str = "127.0.0.41", port: int = 0, *, https: bool = False) -> None:
        self.address = address
        self.port = port
        self.https = https  # behind TLS with a self-signed certificate (redirect targets)
        self.state = _HttpState()
        self._server: _HttpServer | None = None

    def on(self, path: str, behaviour: HttpBehaviour) -> None:
        with self.state.lock:
            self.state.behaviours[path] = behaviour

    def serve(self, token: str, body: str | bytes) -> None:
        """``GET /.well-known/acme-challenge/<token>`` answers 200 with ``body``."""
        self.answer(CHALLENGE_PATH + token, body)

    def answer(self, path: str, body: str | bytes, status: int = 200) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.on(path, lambda h: _respond(h, status, data))

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        def behaviour(handler: http.server.BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.on(path, behaviour)

    def huge(self, path: str, octets: int, prefix: bytes = b"") -> None:
        """Answer ``prefix`` then filler up to ``octets``, counting what was written."""

        def behaviour(handler: http.server.BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", str(octets))
            handler.end_headers()
            chunk = b"x" * 65536
            handler.wfile.write(prefix)
            written = len(prefix)
            try:
                while written < octets:
                    piece = chunk[: octets - written]
                    handler.wfile.write(piece)
                    written += len(piece)
            finally:
                with self.state.lock:
                    self.state.sent[path] = written

        self.on(path, behaviour)

    def hold(self, path: str, then: bytes | None = None) -> None:
        """Accept requests for ``path`` and answer nothing until :meth:`release`
        (or stop); then answer 200 with ``then``, or close without a response."""
        released = threading.Event()
        with self.state.lock:
            self.state.holds[path] = released

        def behaviour(handler: http.server.BaseHTTPRequestHandler) -> None:
            released.wait()
            if then is not None:
                _respond(handler, 200, then)

        self.on(path, behaviour)

    def release(self, path: str | None = None) -> None:
        """Let the held requests of ``path`` (None: of every path) be answered."""
        with self.state.lock:
            events = [e for p, e in self.state.holds.items() if path is None or p == path]
        for event in events:
            event.set()

    def in_flight(self) -> tuple[int, int]:
        """(requests being answered now, the most ever at once)."""
        with self.state.lock:
            return self.state.in_flight, self.state.most_in_flight

    def requests(self) -> list[tuple[str, str]]:
        with self.state.lock:
            return list(self.state.requests)

    def start(self) -> Http01Responder:
        server = _HttpServer((self.address, self.port), _HttpHandler)
        server.state = self.state
        if self.https:
            cert_pem, key_pem = acme_tls_alpn_certificate(
                "https-responder.example", "", identifier_extension=False
            )
            context = _server_context(cert_pem, key_pem, ["http/1.1"])
            # The handshake happens in the handler's thread, not in accept().
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = server.server_address[1]
        self._server = server
        _serve_in_thread(server)
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Http01Responder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -------------------------------------------------------------- tls-alpn-01

ACME_TLS_ALPN = "acme-tls/1"
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def acme_tls_alpn_certificate(
    name: str,
    key_authorization: str,
    *,
    critical: bool = True,
    extra_names: Iterable[str] = (),
    digest: bytes | None = None,
    identifier_extension: bool = True,
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of the RFC 8737 §3 validation certificate for ``name``.

    The keyword arguments spoil it the ways an attacker would: not critical,
    extra subjectAltNames, another digest, no acmeIdentifier at all.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    value = digest if digest is not None else hashlib.sha256(key_authorization.encode()).digest()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls-alpn-01")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls-alpn-01")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in (name, *extra_names)]),
            critical=False,
        )
    )
    if identifier_extension:
        der_octet_string = bytes([0x04, len(value)]) + value
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, der_octet_string), critical=critical
        )
    certificate = builder.sign(key, hashes.SHA256())
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _server_context(cert_pem: bytes, key_pem: bytes, alpn: list[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:  # ssl loads chains from files only
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        context.load_cert_chain(cert_file, key_file)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


class _TlsHandler(socketserver.BaseRequestHandler):
    server: _TlsServer

    def handle(self) -> None:
        self.request.settimeout(10)
        try:
            with self.server.base_context.wrap_socket(self.request, server_side=True) as tls:
                tls.recv(1)  # until the client closes: §3, nothing is sent after the handshake
        except (OSError, ssl.SSLError):
            pass


class _TlsServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    base_context: ssl.SSLContext


class TlsAlpnResponder:
    """A tls-alpn-01 server on ``address:port``: a certificate per SNI name."""

    def __init__(self, address: str = "127.0.0.42", port: int = 0) -> None:
        self.address = address
        self.port = port
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._server: _TlsServer | None = None
        self.server_names: list[str | None] = []

    def serve(
        self,
        name: str,
        key_authorization: str,
        *,
        alpn: list[str] | None = None,
        **spoil: Any,
    ) -> None:
        """Answer SNI ``name`` with its validation certificate (``spoil``: see
        :func:`acme_tls_alpn_certificate`); ``alpn`` is what the server accepts
        (default ``acme-tls/1``; ``[]``: no ALPN at all)."""
        cert_pem, key_pem = acme_tls_alpn_certificate(name, key_authorization, **spoil)
        context = _server_context(cert_pem, key_pem, [ACME_TLS_ALPN] if alpn is None else alpn)
        with self._lock:
            self._contexts[_norm(name)] = context

    def _pick(self, ssl_object: ssl.SSLObject, server_name: str | None, _: Any) -> None:
        with self._lock:
            self.server_names.append(server_name)
            context = self._contexts.get(_norm(server_name or ""))
        if context is not None:
            ssl_object.context = context

    def start(self) -> TlsAlpnResponder:
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.sni_callback = self._pick  # type: ignore[assignment]
        server = _TlsServer((self.address, self.port), _TlsHandler)
        server.base_context = base
        self.port = server.server_address[1]
        self._server = server
        _serve_in_thread(server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TlsAlpnResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------- raw bytes


class RawTcpResponder:
    """Answers every connection with ``payload`` after reading the request (or,
    with ``payload=None``, holds it open and silent until stop): whatever a
    broken or hostile server might send instead of HTTP or TLS."""

    def __init__(self, address: str = "127.0.0.43", port: int = 0) -> None:
        self.payload: bytes | None = b""
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.address = address
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._held: list[socket.socket] = []

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            payload = self.payload
            if payload is None:
                self._held.append(connection)
                continue
            try:
                connection.settimeout(2)
                connection.recv(4096)
                connection.sendall(payload)
            except OSError:
                pass
            connection.close()

    def start(self) -> RawTcpResponder:
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        for connection in self._held:
            connection.close()

    def __enter__(self) -> RawTcpResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(address: str) -> int:
    """A TCP port free on ``address`` now (for a server that must share one port number)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])
