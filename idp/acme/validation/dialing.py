"""Connecting to the server behind a name, for http-01 (RFC 8555 §8.3) and
tls-alpn-01 (RFC 8737 §3).

The name is resolved through the configured resolver (:mod:`.resolver`), then
at most one address a family is dialled, IPv6 first, each with its share of
the deadline: an IPv6 address that swallows packets leaves time for IPv4
(Boulder's fallback), and no record set becomes a scan.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

from idp.acme.validation import resolver
from idp.acme.validation.failure import ChallengeFailed

if TYPE_CHECKING:
    from idp.acme.settings import AcmeSettings


async def connect(
    name: str,
    port: int,
    settings: AcmeSettings,
    *,
    tls: ssl.SSLContext | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream to ``name:port`` (TLS with SNI ``name`` when ``tls`` is given).

    ChallengeFailed: ``dns`` (no usable address), ``tls`` (the handshake
    failed), ``connection`` (no address took the connection).
    """
    addresses = resolver.dial_order(await resolver.addresses(name, settings))
    share = settings.validation_timeout_seconds / len(addresses)
    for address in addresses:
        try:
            async with asyncio.timeout(share):
                return await asyncio.open_connection(
                    str(address),
                    port,
                    ssl=tls,
                    server_hostname=name if tls is not None else None,
                    ssl_handshake_timeout=share if tls is not None else None,
                )
        except ssl.SSLError as exc:
            raise ChallengeFailed(
                "tls", f"{name}: TLS handshake on port {port} failed ({exc.reason})"
            ) from None
        except OSError:  # refused, unreachable, reset, this address's share spent
            continue
    raise ChallengeFailed("connection", f"{name}: could not connect to port {port}")
