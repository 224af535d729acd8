"""What the reverse proxy says about a request, believed only from the proxy itself.

TLS ends at nginx (deploy/nginx/hoviyat.conf). It tells Hoviyat three things
in headers: the client's address (X-Forwarded-For), the scheme
(X-Forwarded-Proto) and the TLS client certificate the client proved it holds
(``X-Client-Certificate``, from ``$ssl_client_escaped_cert``; RFC 8705 §2).
Anyone who reaches the application port directly can send the same headers,
so each is believed only when the TCP peer is one of
``HOVIYAT_TRUSTED_PROXIES``.

This has to be decided before anything rewrites ``scope["client"]``:
uvicorn's own proxy-header middleware replaces the peer with the forwarded
address, after which the peer is gone. So ``hoviyat serve`` leaves uvicorn's
handling off and :class:`ForwardedBy`, which the application runs first on
every request (``DirectFastAPI.front``), does all three: it takes the
certificate header out of the headers every later layer reads, keeps it in
the scope only when the peer is trusted, then applies X-Forwarded-For and
-Proto as uvicorn did (rightmost address that is not a trusted proxy).
Served by plain ``uvicorn idp.asgi:app`` (whose default rewrites a loopback
peer) the peer seen here is the forwarded client, never a trusted proxy
unless it is one: the header is then refused, never wrongly believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

CERTIFICATE_HEADER = b"x-client-certificate"
# The raw header value (bytes) a trusted proxy sent; absent when not believed.
CERTIFICATE_SCOPE_KEY = "hoviyat.client_certificate"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_KNOWN_MAX = 4096


class TrustedProxies:
    """``HOVIYAT_TRUSTED_PROXIES``: addresses, networks (CIDR), or ``*``."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.everyone = False
        self.networks: list[_Network] = []
        self.names: set[str] = set()  # anything else (a unix socket path) compares as text
        # Answers by address: parsing one costs microseconds, and the peer is
        # nearly always the same proxy. Bounded: forwarded client addresses vary.
        self._known: dict[str, bool] = {}
        for raw in entries:
            entry = raw.strip()
            if entry == "*":
                self.everyone = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry)

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks) or bool(self.names)

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str) or not host:
            return False
        known = self._known.get(host)
        if known is None:
            known = self._decide(host)
            if len(self._known) >= _KNOWN_MAX:
                self._known.clear()
            self._known[host] = known
        return known

    def _decide(self, host: str) -> bool:
        if self.everyone or host in self.names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class ForwardedBy:
    """Applies a trusted proxy's headers to the scope, in place (see the module doc)."""

    def __init__(self, trusted: TrustedProxies) -> None:
        self.trusted = trusted

    def __call__(self, scope: Scope) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        certificate: list[bytes] = []
        forwarded_for: list[bytes] = []
        forwarded_proto: bytes | None = None
        for name, value in headers:
            if name == CERTIFICATE_HEADER:
                certificate.append(value)
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
        if certificate:
            # No later layer may read a copy, believed or not.
            scope["headers"] = [item for item in headers if item[0] != CERTIFICATE_HEADER]
        client = scope.get("client")
        if not client or client[0] not in self.trusted:
            return
        if len(certificate) == 1:
            scope[CERTIFICATE_SCOPE_KEY] = certificate[0]
        elif certificate:
            # Two copies: nginx sets exactly one; refuse to choose (malformed).
            scope[CERTIFICATE_SCOPE_KEY] = b"\x00two headers"
        if forwarded_proto is not None:
            proto = forwarded_proto.decode("latin-1").strip()
            if proto in ("http", "https", "ws", "wss"):
                scope["scheme"] = (
                    proto.replace("http", "ws") if scope["type"] == "websocket" else proto
                )
        if forwarded_for:
            host = self._client(b", ".join(forwarded_for).decode("latin-1"))
            if host:
                scope["client"] = (host, 0)

    def _client(self, forwarded_for: str) -> str:
        """The rightmost address that is not a trusted proxy (the leftmost if all are)."""
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in self.trusted:
                return hop
        return hops[0] if hops else ""
