"""Whether a TLS client certificate is one Hoviyat issued to an OAuth client (RFC 8705 §2.1).

``tls_client_auth`` believes a certificate only when the registration
authority's own records say it is ours and in force, checked in this order
(cheapest refusals first):

1. signed by a stored generation of the ``oauth-client`` profile's issuing CA
   (the organisations CA): the signature is verified with that CA's certificate
   from the database (RFC 5280 §6.1.3 (a)(1)); a matching issuer name is not enough;
2. within its validity period, and the CA's too (RFC 5280 §6.1.3 (a)(2));
3. an end-entity certificate with id-kp-clientAuth (RFC 5280 §4.2.1.12);
4. "issued" in Hoviyat's certificate store, by serial and issuing key: a revoked
   certificate, or one the store never recorded, is refused.

Which client it authenticates (its subject DN) is :mod:`idp.oauth.rfc8705`'s
decision. The store is read live on every call: a revocation applies to the
next request on every worker.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlmodel import Session

from ca.serials import serial_hex
from idp.storage.client_certificates import certificate_status, certified_generations
from policies.certificate_profiles import load_profiles

PROFILE = "oauth-client"


class ClientCertificateRefused(ValueError):
    """The certificate is not an OAuth client certificate Hoviyat issued and keeps in force."""


@lru_cache(maxsize=64)
def _ca_certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def issuing_ca_name() -> str:
    return load_profiles()[PROFILE].issuing_ca


def check_issued_client_certificate(
    session: Session, certificate: x509.Certificate, now: datetime
) -> str:
    """The serial (hex) of ``certificate`` when every check passes, else the refusal."""
    ca_name = issuing_ca_name()
    issuer: tuple[str, x509.Certificate] | None = None
    for row_key_id, der in certified_generations(session, ca_name):
        ca_certificate = _ca_certificate(der)
        try:
            # Checks the issuer name, then the signature with the CA's public key.
            certificate.verify_directly_issued_by(ca_certificate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        issuer = (row_key_id, ca_certificate)
        break
    if issuer is None:
        raise ClientCertificateRefused(f"the certificate is not signed by Hoviyat's {ca_name} CA")
    key_id, ca_certificate = issuer
    for checked, what in ((certificate, "certificate"), (ca_certificate, "issuing CA")):
        if not checked.not_valid_before_utc <= now <= checked.not_valid_after_utc:
            raise ClientCertificateRefused(f"the {what} is not valid now")
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    if is_ca or ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise ClientCertificateRefused("the certificate is not a TLS client certificate")
    serial = serial_hex(certificate.serial_number)
    status = certificate_status(session, serial, key_id)
    if status is None:
        raise ClientCertificateRefused("Hoviyat's certificate store does not know this certificate")
    if status != "issued":
        raise ClientCertificateRefused(f"the certificate is {status}")
    return serial
