"""The TLS client certificate the reverse proxy forwarded (RFC 8705 §2, certificate login).

nginx (deploy/nginx/hoviyat.conf, ``ssl_verify_client optional_no_ca``) proves
in the handshake that the client holds the certificate's private key and
forwards the certificate, URL-escaped PEM (``$ssl_client_escaped_cert``), in
``X-Client-Certificate``; an empty value when none was presented. nginx checks
no chain: Hoviyat judges the certificate (:mod:`idp.oauth.rfc8705`,
certificate login). The header is believed only from a trusted proxy, decided
on the real TCP peer by :mod:`idp.http.trusted_proxy`.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from cryptography import x509
from starlette.requests import Request

from idp.http.trusted_proxy import CERTIFICATE_SCOPE_KEY

# A certificate chain nginx forwards is one certificate; a few KiB at most.
MAX_HEADER_BYTES = 16 * 1024
_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"
_PARSED_KEY = "hoviyat.client_certificate.parsed"


class ClientCertificateError(ValueError):
    """The proxy's client-certificate header is present but not one PEM certificate."""


def presented_certificate(request: Request) -> x509.Certificate | None:
    """The TLS client certificate the reverse proxy verified the client holds.

    None when none was presented, or when the request did not come through a
    trusted proxy (HOVIYAT_TRUSTED_PROXIES): the header is then never believed.
    Raises ClientCertificateError when a trusted proxy forwarded something malformed.
    """
    scope = request.scope
    parsed = scope.get(_PARSED_KEY)
    if parsed is not None:
        return parsed  # type: ignore[no-any-return]
    raw = scope.get(CERTIFICATE_SCOPE_KEY)
    if not raw:
        return None
    certificate = parse_forwarded(raw)
    scope[_PARSED_KEY] = certificate
    return certificate


def parse_forwarded(raw: bytes) -> x509.Certificate:
    """nginx's ``$ssl_client_escaped_cert``: one URL-escaped PEM certificate, nothing else."""
    if len(raw) > MAX_HEADER_BYTES:
        raise ClientCertificateError("the forwarded client certificate is too large")
    pem = unquote_to_bytes(raw).strip()
    if pem.count(_BEGIN) != 1 or not pem.startswith(_BEGIN) or not pem.endswith(_END):
        raise ClientCertificateError("the forwarded client certificate is not one PEM certificate")
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise ClientCertificateError("the forwarded client certificate cannot be parsed") from None
