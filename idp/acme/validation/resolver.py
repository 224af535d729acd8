"""Names the validators dial and the TXT records dns-01 reads (RFC 8555 §8.3-8.4, RFC 8737 §3).

Every lookup goes through ``settings.dns_resolver`` (``host:port``; empty: the
system's, from ``/etc/resolv.conf``), asynchronously with dnspython, with no
cache: a challenge is judged on what the DNS says now. Lookups that fail
(NXDOMAIN, SERVFAIL, no answer in time) raise ``ChallengeFailed("dns", ...)``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from typing import TYPE_CHECKING

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from idp.acme.validation.failure import ChallengeFailed

if TYPE_CHECKING:
    from idp.acme.settings import AcmeSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def parse_resolver(value: str) -> tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"`` or a bare address (port 53) -> (address, port).

    The host must be an IP address: a resolver named by a DNS name would need
    a resolver to find it.
    """
    text = value.strip()
    port = 53
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"dns_resolver {value!r}: expected [address]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # a bare IPv4 or IPv6 address
        host, port_text = text, ""
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"dns_resolver {value!r}: port must be 1-65535")
        port = int(port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"dns_resolver {value!r}: host must be an IP address") from None
    return str(address), port


@functools.cache
def _system_nameservers() -> tuple[str, ...]:
    # Reads /etc/resolv.conf once per process, in a worker thread (see _resolver).
    return tuple(str(n) for n in dns.resolver.Resolver().nameservers)


async def _resolver(settings: AcmeSettings) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    if settings.dns_resolver:
        address, port = parse_resolver(settings.dns_resolver)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port)]
    else:
        try:
            resolver.nameservers = list(await asyncio.to_thread(_system_nameservers))
        except dns.exception.DNSException:  # no /etc/resolv.conf, or no nameserver in it
            raise ChallengeFailed("dns", "no DNS resolver configured on the server") from None
    resolver.lifetime = settings.validation_timeout_seconds
    resolver.timeout = min(2.0, settings.validation_timeout_seconds)
    return resolver


async def _query(name: str, rdtype: str, settings: AcmeSettings) -> dns.resolver.Answer | None:
    """The answer, or None when the name exists without records of that type."""
    resolver = await _resolver(settings)
    try:
        return await resolver.resolve(name, rdtype, search=False, raise_on_no_answer=True)
    except dns.resolver.NoAnswer:
        return None
    except dns.resolver.NXDOMAIN:
        raise ChallengeFailed("dns", f"{name}: no such domain (NXDOMAIN, {rdtype})") from None
    except dns.resolver.NoNameservers:
        raise ChallengeFailed("dns", f"{name}: the resolver failed ({rdtype}, SERVFAIL)") from None
    except dns.exception.Timeout:
        raise ChallengeFailed("dns", f"{name}: no DNS answer in time ({rdtype})") from None
    except dns.exception.DNSException as exc:
        # A malformed name (empty label, over 255 octets) or a garbled answer.
        raise ChallengeFailed("dns", f"{name}: DNS lookup failed ({rdtype}): {exc}") from None


async def addresses(name: str, settings: AcmeSettings) -> list[IPAddress]:
    """The A and AAAA addresses of ``name``, IPv6 first (RFC 8738 does not apply: names only).

    One family failing is no failure if the other answers, as Boulder does.
    """
    results = await asyncio.gather(
        _query(name, "AAAA", settings), _query(name, "A", settings), return_exceptions=True
    )
    found: list[IPAddress] = []
    failures: list[ChallengeFailed] = []
    for result in results:
        if isinstance(result, ChallengeFailed):
            failures.append(result)
        elif isinstance(result, BaseException):
            raise result
        elif result is not None:
            found.extend(ipaddress.ip_address(rdata.address) for rdata in result)
    if found:
        allowed = [a for a in found if not _refused(a, settings)]
        if not allowed:
            raise ChallengeFailed(
                "dns", f"{name}: resolves only to addresses validation does not dial"
            )
        return allowed
    if failures:
        raise failures[0]
    raise ChallengeFailed("dns", f"{name}: no A or AAAA record")


def _refused(address: IPAddress, settings: AcmeSettings) -> bool:
    """In ``settings.validation_refused_networks`` (an IPv4-mapped IPv6 address
    is judged as the IPv4 address it reaches)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for text in settings.validation_refused_networks:
        network = ipaddress.ip_network(text, strict=False)
        if network.version == address.version and address in network:
            return True
    return False


def dial_order(found: list[IPAddress]) -> list[IPAddress]:
    """At most one address a family, IPv6 first: a second try only if the first
    family does not connect (Boulder's fallback), never a scan of every record."""
    v6 = [a for a in found if a.version == 6][:1]
    v4 = [a for a in found if a.version == 4][:1]
    return v6 + v4


async def txt_records(name: str, settings: AcmeSettings) -> list[bytes]:
    """Each TXT record at ``name`` as one byte string (its strings joined, RFC 7208 §3.3)."""
    answer = await _query(name, "TXT", settings)
    if answer is None:
        return []
    return [b"".join(rdata.strings) for rdata in answer if rdata.rdtype == dns.rdatatype.TXT]
