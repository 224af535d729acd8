"""The one JSON form of a certificate record: ``GET /v1/certificates/{serial}`` and ``ca list``."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from idp.storage.certificates import CertificateRecord


def certificate_document(record: CertificateRecord) -> dict[str, Any]:
    """The record's public fields, and the certificate (PEM) once signed.

    Who asked and why (``requested_by``, ``request_reason``) stay in the audit
    log, which is where an auditor reads them.
    """
    document: dict[str, Any] = {
        "serial": record.serial_hex,
        "status": record.status,
        "profile": record.profile,
        "issuer_ca": record.issuer_ca,
        "issuer_key_id": record.issuer_key_id,
        "subject": record.subject,
        "not_before": record.not_before.isoformat(),
        "not_after": record.not_after.isoformat(),
        "tracking_code": record.tracking_code,
        "issued_at": record.issued_at.isoformat() if record.issued_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "revocation_reason": record.revocation_reason,
    }
    if record.der is not None:
        certificate = x509.load_der_x509_certificate(record.der)
        document["certificate"] = certificate.public_bytes(Encoding.PEM).decode()
    return document
