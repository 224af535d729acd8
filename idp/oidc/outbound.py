"""URLs Hoviyat itself calls on a client's word, guarded against server-side request forgery.

A client registers a ``backchannel_logout_uri`` (and may name a
``sector_identifier_uri``); Hoviyat then makes requests to it from inside its
own network. An agency that registers its own client (RFC 7591) must not be
able to make Hoviyat reach what only Hoviyat can reach: the cloud metadata
service at 169.254.169.254, the database or registry on a private address,
an admin port on loopback. So such a URL must be https and its host must
resolve only to globally routable unicast addresses (:func:`refused`): no
loopback, private (RFC 1918, RFC 4193), shared (RFC 6598), link-local,
multicast, reserved or documentation ranges, and no IPv6 address that carries
one of those IPv4 addresses inside it (mapped, 6to4, Teredo, NAT64).

The check is made at registration (:func:`check_url`) and again at each
delivery: DNS may have changed since. At delivery the address is also pinned
(:class:`GuardedTransport`): the connection is made to the very address that
was checked, so a name that answers a public address to the check and a
private one to the connection (DNS rebinding) reaches nothing. The
``outbound_allow_loopback`` setting lets tests and development call
``http://127.0.0.1`` (loopback only, never a private network), as
``sector_identifier_allow_http_loopback`` does for sector documents.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix
_MAX_ADDRESSES = 2  # one try a family at most, as the ACME validators dial


class OutboundRefused(ValueError):
    """Hoviyat will not call this URL; ``str(e)`` says why."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refused(address: IPAddress, allow_loopback: bool = False) -> bool:
    """True unless ``address`` is global unicast (or loopback, when allowed)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return refused(inner, allow_loopback)
    if allow_loopback and address.is_loopback:
        return False
    return not address.is_global or address.is_multicast


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to now (a blocking call: use a worker thread)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundRefused(f"{host} does not resolve ({exc})") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in found:
        # An IPv6 sockaddr's first member may carry a zone ("fe80::1%eth0").
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundRefused(f"{host} has no address")
    return addresses


def allowed_addresses(host: str, port: int, allow_loopback: bool) -> list[IPAddress]:
    """The addresses of ``host``; OutboundRefused if any of them is refused (a name that
    answers one private address among public ones is refused whole)."""
    addresses = resolve(host.strip("[]"), port)
    bad = [str(a) for a in addresses if refused(a, allow_loopback)]
    if bad:
        raise OutboundRefused(
            f"{host} resolves to {', '.join(bad)}, which Hoviyat does not call "
            "(loopback, private, link-local or otherwise not global)"
        )
    return addresses


def check_url(url: str, *, allow_loopback: bool = False) -> None:
    """Refuse (OutboundRefused) a URL Hoviyat should not call: not https (http only to
    loopback, when allowed), credentials in it, or a host that resolves to a refused
    address. Resolves the name: a blocking call, for a worker thread."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise OutboundRefused(f"{url!r} has an invalid port") from None
    host = parts.hostname
    if not host or parts.scheme not in ("https", "http"):
        raise OutboundRefused(f"{url!r} must be an absolute https URL")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused(f"{url!r} must not carry credentials")
    addresses = allowed_addresses(host, port or 443, allow_loopback)
    if parts.scheme == "http" and not (allow_loopback and all(a.is_loopback for a in addresses)):
        raise OutboundRefused(f"{url!r} must use https")


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses :func:`allowed_addresses` accepts, resolved here, so
    the address checked is the address dialled; TLS still verifies the host's name."""

    def __init__(self, allow_loopback: bool) -> None:
        self._allow_loopback = allow_loopback

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = allowed_addresses(host, port, self._allow_loopback)
        except OutboundRefused as exc:
            raise httpcore.ConnectError(str(exc)) from None
        failure: httpcore.ConnectError | None = None
        for address in addresses[:_MAX_ADDRESSES]:
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that dials only allowed addresses, and never through a proxy
    from the environment (a proxy would connect where this guard cannot see)."""

    def __init__(self, *, allow_loopback: bool = False, verify: ssl.SSLContext | bool = True):
        super().__init__(trust_env=False, verify=verify)
        context = httpx.create_ssl_context(verify=verify, trust_env=False)
        # httpx builds its pool without a network backend parameter; this one's dials.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=_GuardedBackend(allow_loopback)
        )
