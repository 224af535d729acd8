"""tls-alpn-01 (RFC 8737): a TLS handshake offering ALPN ``acme-tls/1`` with SNI
``<name>`` is answered with a self-signed certificate that proves the key
authorization.

§3: the certificate has a subjectAltName with the one dNSName being validated
and nothing else, and a critical acmeIdentifier extension
(id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31) whose value is the DER OCTET STRING
of SHA-256(key authorization). The certificate is not verified against any
trust anchor: by design of the method the extension is the proof (§4).
"""

from __future__ import annotations

import hashlib
import ssl
from typing import TYPE_CHECKING

from cryptography import x509

from idp.acme.validation import dialing
from idp.acme.validation.failure import ChallengeFailed

if TYPE_CHECKING:
    from idp.acme.settings import AcmeSettings

ACME_TLS_ALPN = "acme-tls/1"  # RFC 8737 §6.2
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # §6.1


def acme_identifier_value(key_authorization: str) -> bytes:
    """The extnValue §3 requires: ``Authorization ::= OCTET STRING (SIZE (32))``, DER."""
    return b"\x04\x20" + hashlib.sha256(key_authorization.encode()).digest()


def _tls_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # §4: TLS 1.2 or later
    context.set_alpn_protocols([ACME_TLS_ALPN])
    return context


_TLS = _tls_context()


def check_certificate(der: bytes, identifier: str, key_authorization: str) -> None:
    """RFC 8737 §3's rules on the presented certificate; ChallengeFailed if one fails."""

    def wrong(why: str) -> ChallengeFailed:
        return ChallengeFailed("incorrectResponse", f"tls-alpn-01 certificate: {why}")

    try:
        certificate = x509.load_der_x509_certificate(der)
        extensions = certificate.extensions  # parsed here: duplicates raise
    except (
        ValueError,
        x509.InvalidVersion,  # found by fuzzing: a version octet other than v1/v3
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
    ):
        raise wrong("not a parsable X.509 certificate") from None
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise wrong("no subjectAltName") from None
    names = list(san)
    if len(names) != 1 or not isinstance(names[0], x509.DNSName):
        raise wrong(f"subjectAltName must hold exactly one dNSName, has {len(names)} entries")
    if names[0].value.lower().rstrip(".") != identifier.lower():
        raise wrong("subjectAltName names another domain")
    try:
        acme_identifier = extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    except x509.ExtensionNotFound:
        raise wrong("no acmeIdentifier extension") from None
    if not acme_identifier.critical:
        raise wrong("acmeIdentifier extension is not critical")
    value = acme_identifier.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise wrong("acmeIdentifier extension is not an OCTET STRING")
    if value.value != acme_identifier_value(key_authorization):
        raise wrong("acmeIdentifier is not SHA-256 of the key authorization")


async def validate_tls_alpn01(
    identifier: str, token: str, key_authorization: str, settings: AcmeSettings
) -> None:
    if identifier.startswith("*."):
        raise ChallengeFailed("malformed", "tls-alpn-01 cannot validate a wildcard (RFC 8737 §3)")
    # SNI is the name being validated (§3); the handshake is the whole exchange.
    _, writer = await dialing.connect(identifier, settings.tls_alpn01_port, settings, tls=_TLS)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        protocol = ssl_object.selected_alpn_protocol()
        der = ssl_object.getpeercert(binary_form=True)
    finally:
        # §3: the connection is used for nothing else; no graceful TLS close needed.
        writer.transport.abort()
    if protocol != ACME_TLS_ALPN:
        raise ChallengeFailed(
            "tls", f"{identifier}: the server did not negotiate ALPN {ACME_TLS_ALPN}"
        )
    if not der:
        raise ChallengeFailed("tls", f"{identifier}: the server presented no certificate")
    check_certificate(der, identifier, key_authorization)
