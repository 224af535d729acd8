"""Delegated OCSP responder certificates (RFC 6960 section 4.2.2.2), one per CA key generation.

What a responder certificate is, decided here: a P-256 key of its own in the
CA key store (file or HSM), certified by the issuing CA under the
``ocsp-responder`` profile (id-kp-OCSPSigning, id-pkix-ocsp-nocheck,
short-lived), with the subject "<CA common name> OCSP Responder". ``ca/``
only signs it. Keeping it, and renewing it before it expires, is the OCSP
service's business (``idp/pki/ocsp_responder.py``).
"""

from __future__ import annotations

import secrets

from cryptography import x509
from cryptography.x509.oid import NameOID

from ca.hierarchy import IssuingCA
from ca.issuance import Issued, Order, issue
from ca.keys import KeyStore, Signer
from ca.names import COUNTRY, ORGANIZATION, publication_name
from idp.storage.certificate_store import IntentRecords
from idp.storage.engine import Database
from idp.tracking import new_tracking_code
from policies.certificate_profiles import load_profiles

RESPONDER_PROFILE = "ocsp-responder"
RESPONDER_CURVE = "P-256"


def responder_subject(issuing_ca: IssuingCA) -> x509.Name:
    """C, O of the CA, CN "<CA common name> OCSP Responder"."""
    common_name = issuing_ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ca_name = str(common_name[0].value) if common_name else issuing_ca.name
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{ca_name} OCSP Responder"[:64]),
        ]
    )


def issue_ocsp_responder(
    db: Database, keys: KeyStore, issuing_ca: IssuingCA, requested_by: str = "hoviyat"
) -> tuple[Issued, Signer]:
    """A new responder key and its certificate from ``issuing_ca``; recorded and audited."""
    publication = publication_name(issuing_ca.name, issuing_ca.generation)
    signer = keys.generate(f"ocsp-{publication}-{secrets.token_hex(4)}", RESPONDER_CURVE)
    order = Order(
        profile=load_profiles()[RESPONDER_PROFILE],
        issuing_ca=issuing_ca,
        public_key=signer.public_key(),
        subject=responder_subject(issuing_ca),
        requested_by=requested_by,
        tracking_code=new_tracking_code(),
        request_reason="delegated OCSP responder",
        actor_type="system",
        # A CA-power certificate: its issuance is a ceremony, audited as such.
        audit_detail={"issuance": "ceremony"},
    )
    return issue(IntentRecords(db), order), signer
