"""http-01 (RFC 8555 §8.3): GET ``http://<name>/.well-known/acme-challenge/<token>``
answers the key authorization.

The name is resolved through the configured resolver and the address dialled
with ``Host: <name>``, so the DNS the validation trusts is the one the settings
name (and tests point names at loopback). The port is ``settings.http01_port``.
HTTP/1.1 is spoken by h11 over an asyncio stream; httpx only parses URLs here.

What the other side controls is bounded: at most :data:`MAX_REDIRECTS`
redirects, each to ``http`` on the http-01 port or ``https`` on the
tls-alpn-01 port (§8.3 allows 80 and 443) and to a DNS name, never an IP
literal; the body is read as a stream and given up past :data:`MAX_BODY`
octets; nothing it says is echoed in the error detail.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import h11
import httpx

from idp.acme.validation import dialing, resolver
from idp.acme.validation.failure import ChallengeFailed

if TYPE_CHECKING:
    from idp.acme.settings import AcmeSettings

MAX_REDIRECTS = 10
# A key authorization is a 43-character token, a dot and a 43-character
# thumbprint; 8 KiB leaves room for padding whitespace and no more.
MAX_BODY = 8192
MAX_HEADERS = 16384  # the status line and headers together
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Hoviyat-ACME-validation (RFC 8555 8.3)"


def _tls_context() -> ssl.SSLContext:
    # An https redirect target is not authenticated by its certificate: the key
    # authorization in the body is the proof (§8.3, §10.2), as Boulder does.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


_TLS = _tls_context()


def challenge_url(identifier: str, token: str, settings: AcmeSettings) -> httpx.URL:
    return httpx.URL(
        scheme="http",
        host=identifier,
        port=settings.http01_port,
        path=f"/.well-known/acme-challenge/{token}",
    )


def redirect_target(current: httpx.URL, location: str, settings: AcmeSettings) -> httpx.URL:
    """The URL a redirect leads to, or ChallengeFailed if §8.3's bounds refuse it."""
    try:
        target = current.join(location.strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        raise ChallengeFailed("incorrectResponse", "redirect to a malformed URL") from None
    allowed_ports = {"http": settings.http01_port, "https": settings.tls_alpn01_port}
    if target.scheme not in allowed_ports:
        raise ChallengeFailed(
            "incorrectResponse", f"redirect to scheme {target.scheme[:16]!r}: only http and https"
        )
    port = target.port or (80 if target.scheme == "http" else 443)
    if port != allowed_ports[target.scheme]:
        raise ChallengeFailed(
            "incorrectResponse",
            f"redirect to {target.scheme} port {port}: only {allowed_ports[target.scheme]}",
        )
    host = target.host
    if not host or resolver.is_ip_literal(host):
        raise ChallengeFailed("incorrectResponse", "redirect to an IP address or no host")
    if target.userinfo:
        raise ChallengeFailed("incorrectResponse", "redirect URL carries credentials")
    return target


def _host_header(url: httpx.URL) -> str:
    default = 80 if url.scheme == "http" else 443
    port = url.port or default
    return url.host if port == default else f"{url.host}:{port}"


async def _fetch(url: httpx.URL, settings: AcmeSettings) -> tuple[int, str | None, bytes]:
    """One GET of ``url``: (status, Location or None, body up to MAX_BODY).

    HTTP/1.1 by h11 over an asyncio stream: no connection pool, redirect, proxy
    or cookie handling to account for, and nothing between the bytes and the
    limits above.
    """
    https = url.scheme == "https"
    port = url.port or (443 if https else 80)
    reader, writer = await dialing.connect(url.host, port, settings, tls=_TLS if https else None)
    try:
        return await _exchange(reader, writer, url)
    except h11.RemoteProtocolError:
        raise ChallengeFailed("connection", f"{url.host}: not a valid HTTP response") from None
    except h11.LocalProtocolError:
        # A redirect target h11 will not put in a request line.
        raise ChallengeFailed("incorrectResponse", "redirect to an unusable URL") from None
    except ssl.SSLError as exc:
        raise ChallengeFailed("tls", f"{url.host}: TLS failed ({exc.reason})") from None
    except OSError as exc:  # a reset in the middle of the response
        raise ChallengeFailed("connection", f"{url.host}: {type(exc).__name__}") from None
    finally:
        writer.transport.abort()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: httpx.URL
) -> tuple[int, str | None, bytes]:
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADERS)
    request = h11.Request(
        method="GET",
        target=url.raw_path,
        headers=[
            ("Host", _host_header(url)),
            ("User-Agent", USER_AGENT),
            ("Accept", "*/*"),
            # Raw octets are compared: a compressed body is no key
            # authorization (and no way past MAX_BODY).
            ("Accept-Encoding", "identity"),
            ("Connection", "close"),
        ],
    )
    writer.write(connection.send(request) + (connection.send(h11.EndOfMessage()) or b""))
    status, body = 0, bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            if status in REDIRECT_STATUSES:
                location = dict(event.headers).get(b"location")
                return status, location.decode("latin-1") if location is not None else None, b""
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise ChallengeFailed("incorrectResponse", f"response body over {MAX_BODY} octets")
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, None, bytes(body)
        # InformationalResponse (1xx): read on.


async def validate_http01(
    identifier: str, token: str, key_authorization: str, settings: AcmeSettings
) -> None:
    if identifier.startswith("*."):
        raise ChallengeFailed("malformed", "a wildcard name is validated by dns-01 only (§7.1.3)")
    url = challenge_url(identifier, token, settings)
    for hop in range(MAX_REDIRECTS + 1):
        status, location, body = await _fetch(url, settings)
        if status in REDIRECT_STATUSES:
            if hop == MAX_REDIRECTS:
                raise ChallengeFailed("incorrectResponse", f"more than {MAX_REDIRECTS} redirects")
            if location is None:
                raise ChallengeFailed("incorrectResponse", f"redirect {status} without Location")
            url = redirect_target(url, location, settings)
            continue
        if status == 0:
            raise ChallengeFailed("connection", f"{url.host} closed without a response")
        if status != 200:
            raise ChallengeFailed("incorrectResponse", f"{url.host} answered HTTP {status}")
        # §8.3: the body, trimmed of surrounding whitespace, is the key authorization.
        if body.strip() != key_authorization.encode():
            raise ChallengeFailed(
                "incorrectResponse", "the response body is not the key authorization"
            )
        return
