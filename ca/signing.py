"""Signing X.509 certificates, CRLs and CSRs with any :class:`ca.keys.Signer`.

(OCSP responses are encoded and signed by ``ca/rfc6960.py`` through ``Signer.sign``:
``cryptography``'s OCSP builder insists the responder certificate's key is the
signing key, which a throwaway draft cannot satisfy.)

``cryptography``'s builders need an in-process private key. A file key is
one, and is used directly. An HSM key is not: the object is built and signed
once with a throwaway key of the same curve (so the signature algorithm
identifier is already right), then its to-be-signed bytes are signed by the
HSM and the signature value is replaced (asn1crypto re-assembles the DER).
The throwaway signature never leaves this module.

End-entity certificates are assembled as DER by ``ca.rfc5280`` and their
to-be-signed bytes signed directly (``IssuingCA.sign_tbs``); their pre-signing
lint copy carries a throwaway key's signature (:func:`throwaway_signature`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, Protocol, TypeVar

from asn1crypto import crl as asn1_crl
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ca.keys import CURVES, CAHash, Signer

T = TypeVar("T")


@cache
def _throwaway_key(curve: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVES[curve])


def throwaway_certificate(builder: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    """The certificate as it will be, but signed by a throwaway key: for linting only."""
    return builder.sign(_throwaway_key(signer.curve), signer.hash_algorithm())


def throwaway_signature(data: bytes, signer: Signer) -> bytes:
    """A signature of ``data`` by a throwaway key of the signer's curve and hash: for linting."""
    return _throwaway_key(signer.curve).sign(data, ec.ECDSA(signer.hash_algorithm()))


class _Signed(Protocol):
    def public_bytes(self, encoding: Encoding) -> bytes: ...


S = TypeVar("S", bound=_Signed)


@dataclass(frozen=True)
class _Kind(Generic[S]):
    """A signed object as asn1crypto takes it apart, and as ``cryptography`` loads it."""

    structure: type[Any]
    tbs_field: str
    signature_field: str
    load: Callable[[bytes], S]


_CERTIFICATE = _Kind(
    asn1_x509.Certificate, "tbs_certificate", "signature_value", x509.load_der_x509_certificate
)
_CRL = _Kind(asn1_crl.CertificateList, "tbs_cert_list", "signature", x509.load_der_x509_crl)


def _resigned(kind: _Kind[S], signer: Signer) -> Callable[[S], S]:
    """A draft (signed by a throwaway key) to the same, signed by ``signer``."""

    def resign(draft: S) -> S:
        parsed = kind.structure.load(draft.public_bytes(Encoding.DER))
        tbs = parsed[kind.tbs_field]
        signed = kind.structure(
            {
                kind.tbs_field: tbs,
                "signature_algorithm": parsed["signature_algorithm"],
                kind.signature_field: signer.sign(tbs.dump()),
            }
        )
        return kind.load(signed.dump())

    return resign


def _signed(
    sign: Callable[[ec.EllipticCurvePrivateKey, CAHash], T],
    signer: Signer,
    resign: Callable[[T], T],
) -> T:
    """``sign`` (a builder's) with the signer's in-process key; for an HSM key, with a
    throwaway key of the same curve, the draft then ``resign``-ed by the HSM."""
    if signer.private_key is not None:
        return sign(signer.private_key, signer.hash_algorithm())
    return resign(sign(_throwaway_key(signer.curve), signer.hash_algorithm()))


def sign_certificate(builder: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    return _signed(builder.sign, signer, _resigned(_CERTIFICATE, signer))


def sign_crl(
    builder: x509.CertificateRevocationListBuilder, signer: Signer
) -> x509.CertificateRevocationList:
    return _signed(builder.sign, signer, _resigned(_CRL, signer))


def sign_csr(
    builder: x509.CertificateSigningRequestBuilder, signer: Signer
) -> x509.CertificateSigningRequest:
    """A CSR for an issuing CA's own key (the offline-root ceremony), HSM or file."""

    def resign(draft_csr: x509.CertificateSigningRequest) -> x509.CertificateSigningRequest:
        return _csr_with_key_of(signer, draft_csr)

    return _signed(builder.sign, signer, resign)


def _csr_with_key_of(
    signer: Signer, draft_csr: x509.CertificateSigningRequest
) -> x509.CertificateSigningRequest:
    """The throwaway-key draft with the signer's public key and the signer's signature."""
    draft = asn1_csr.CertificationRequest.load(draft_csr.public_bytes(Encoding.DER))
    # A CSR builder takes the public key from the signing key: put the HSM's key in.
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": draft["certification_request_info"]["version"],
            "subject": draft["certification_request_info"]["subject"],
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(
                signer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            ),
            "attributes": draft["certification_request_info"]["attributes"],
        }
    )
    signed = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": draft["signature_algorithm"],
            "signature": signer.sign(info.dump()),
        }
    )
    return x509.load_der_x509_csr(signed.dump())
