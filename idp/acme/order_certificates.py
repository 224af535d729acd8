"""Downloading an order's certificate (RFC 8555 §7.4.2): ``application/pem-certificate-chain``.

The leaf, then the CAs that issued it up to but not including the root
(RFC 8555 §9.1; the root is the relying party's trust anchor, sent by no one).
Only the account that ordered it may fetch it over ACME.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount
from idp.pki.registration import Pki
from idp.storage import acme_orders as store
from idp.storage.certificate_store import certificate_record
from idp.storage.engine import Database

MEDIA_TYPE = "application/pem-certificate-chain"


def certificate_chain_pem(
    db: Database, pki: Pki, certificate_id: str, account: AcmeAccount, ca: str
) -> str:
    with db.read() as session:
        order = store.order_of_certificate(session, ca, certificate_id)
    record = certificate_record(db, certificate_id) if order is not None else None
    if order is None or order.account_id != account.id or record is None or record.der is None:
        raise AcmeProblem("malformed", "no such certificate", 404)
    authority = pki.hierarchy.store.authority_by_key_id(record.issuer_key_id)
    chain = pki.hierarchy.chain_of(authority) if authority is not None else ()
    # chain_of ends with the self-signed root: left out.
    intermediates = [c for c in chain if c.issuer != c.subject]
    leaf = x509.load_der_x509_certificate(record.der)
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in (leaf, *intermediates))
