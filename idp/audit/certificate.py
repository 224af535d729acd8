"""A certificate for the log's checkpoint key from Hoviyat's infrastructure CA.

The log asks like any other requester: a CSR signed by its own key (proof of
possession) for the ``service-signing`` profile, through the registration step
(:class:`idp.pki.registration.Pki`), which decides the subject and has the CA
sign. The chain (leaf, issuing CA, root) is stored with the key and travels in
every export, so ``hoviyat audit verify --root root.pem`` checks checkpoint
signatures back to the root certificate alone.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from idp.audit.signing_key import attach_certificate_chain, signing_key
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage.engine import Database

PROFILE = "service-signing"
SERVICE_NAME = "Hoviyat audit log"


def certify_log_key(
    db: Database, pki: Pki, key_encryption_key: bytes, requested_by: str
) -> tuple[str, str]:
    """Certify the active log key; returns (key id, PEM chain leaf first)."""
    with db.session() as session:
        key, private_key = signing_key(session, key_encryption_key)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVICE_NAME)]))
        .sign(private_key, hashes.SHA256())
    )
    issued = pki.ceremony_certificate(
        Request(
            csr=csr.public_bytes(Encoding.PEM),
            profile=PROFILE,
            subject=SubjectReference(service_name=SERVICE_NAME),
            requested_by=requested_by,
            request_reason="audit log checkpoint signing key",
            actor_type="administrator",
        )
    )
    chain = issued.pem_chain()
    with db.session() as session:
        attach_certificate_chain(session, key.key_id, chain)
    return key.key_id, chain
