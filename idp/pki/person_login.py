"""Who a person certificate names, decided by the registration authority (login at level high).

The national smart card's model: the browser holds a key certified by Hoviyat's
``persons`` CA under the ``person-authentication`` profile; the reverse proxy
proves the browser holds that key (TLS client authentication) and forwards the
certificate. Everything else is judged here, and a certificate is believed only
when every check passes, in this order (cheapest refusals first):

1. issued by a generation of the profile's issuing CA as stored in Hoviyat's
   database: the signature is verified with that CA's certificate (RFC 5280
   §6.1.3 (a)(1)); a name or key identifier that merely matches is not enough;
2. within its validity period, and the CA's too (RFC 5280 §6.1.3 (a)(2));
3. of the person-authentication profile: not a CA, digitalSignature,
   id-kp-clientAuth, and the profile's own certificate policy (a person's
   signing certificate or an organisation's client certificate is refused);
4. a national code in the subject (``serialNumber = PNOIR-<national code>``,
   ETSI EN 319 412-1 §5.1.3, as :mod:`idp.pki.subjects` writes it);
5. "good" from Hoviyat's own OCSP responder, asked live: a real RFC 6960
   request with a fresh nonce (§4.4.1), so the answer is signed now from the
   certificate's row, never a cached one; the signed response is verified
   (responder certificate issued by the same CA with id-kp-OCSPSigning, §4.2.2.2;
   signature; CertID and nonce match; thisUpdate/nextUpdate around now, §3.2)
   before "good" is believed. No answer, or one that does not verify, refuses
   (fail closed);
6. a living person of that national code in the civil registry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.keys import KeyStoreError
from idp.pki.ocsp_responder import OCSPService
from idp.pki.status_settings import utc
from idp.storage.certificate_store import certified_issuing_rows
from policies.certificate_profiles import EXTENDED_KEY_USAGES, CertificateProfile, load_profiles
from verifiers.identifiers import IdentifierError, validate_national_code
from verifiers.registry.base import Person, Registries

PROFILE = "person-authentication"
NATIONAL_CODE_PREFIX = "PNOIR-"
# Clocks of the responder and of this process are the same machine's or NTP's.
CLOCK_SKEW = timedelta(minutes=5)
NONCE_BYTES = 16  # RFC 9654: at most 32

_E = TypeVar("_E", bound=x509.ExtensionType)


class Refusal(StrEnum):
    """Why a presented certificate does not log anyone in (audited as ``reason``)."""

    NOT_OUR_CA = "not-issued-by-persons-ca"
    OUTSIDE_VALIDITY = "outside-validity"
    WRONG_PROFILE = "not-person-authentication"
    NO_NATIONAL_CODE = "no-national-code"
    REVOKED = "revoked"
    UNKNOWN_TO_OCSP = "unknown-to-ocsp"
    OCSP_UNAVAILABLE = "ocsp-unavailable"
    NOT_IN_REGISTRY = "not-in-registry"
    DECEASED = "deceased"


class PersonCertificateRefused(Exception):
    """The certificate logs no one in; ``reason`` says which check failed."""

    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CertificatePerson:
    """The person a certificate that passed every check names."""

    person: Person
    serial_hex: str
    issuer_key_id: str

    @property
    def national_code(self) -> str:
        return self.person.national_code


@dataclass(frozen=True)
class _Issuer:
    key_id: str
    certificate: x509.Certificate


def person_from_certificate(
    registries: Registries,
    ocsp_service: OCSPService,
    certificate: x509.Certificate,
    now: datetime,
    profile: CertificateProfile | None = None,
) -> CertificatePerson:
    """The living person ``certificate`` authenticates, or :class:`PersonCertificateRefused`.

    Raises :class:`verifiers.registry.base.RegistryUnavailable` when the civil
    registry does not answer (the caller answers 503: neither yes nor no).
    """
    now = utc(now)
    profile = profile or load_profiles()[PROFILE]
    issuer = _issuer(ocsp_service, profile, certificate)
    _within_validity(certificate, issuer, now)
    _of_profile(certificate, profile)
    code = national_code_of(certificate)
    _good_by_ocsp(ocsp_service, certificate, issuer, now)
    person = registries.civil.person(code)
    if person is None:
        raise PersonCertificateRefused(
            Refusal.NOT_IN_REGISTRY, "the civil registry has no person with this national code"
        )
    if not person.alive:
        raise PersonCertificateRefused(
            Refusal.DECEASED, "the civil registry records this person as deceased"
        )
    return CertificatePerson(person, f"{certificate.serial_number:x}", issuer.key_id)


def _issuer(
    ocsp_service: OCSPService, profile: CertificateProfile, certificate: x509.Certificate
) -> _Issuer:
    """The stored generation of the profile's CA whose key signed ``certificate``."""
    for row in certified_issuing_rows(ocsp_service.db):
        if row.name != profile.issuing_ca or row.certificate is None:
            continue
        ca_certificate = x509.load_der_x509_certificate(row.certificate)
        try:
            # Checks the issuer name and verifies the signature with the CA's key.
            certificate.verify_directly_issued_by(ca_certificate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return _Issuer(row.key_id, ca_certificate)
    raise PersonCertificateRefused(
        Refusal.NOT_OUR_CA, f"not signed by Hoviyat's {profile.issuing_ca!r} CA"
    )


def _within_validity(certificate: x509.Certificate, issuer: _Issuer, now: datetime) -> None:
    for checked in (certificate, issuer.certificate):
        if not checked.not_valid_before_utc <= now <= checked.not_valid_after_utc:
            which = "certificate" if checked is certificate else "issuing CA"
            raise PersonCertificateRefused(
                Refusal.OUTSIDE_VALIDITY, f"the {which} is not valid at {now.isoformat()}"
            )


def _extension(certificate: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _of_profile(certificate: x509.Certificate, profile: CertificateProfile) -> None:
    """The profile's marks: end entity, digitalSignature, its EKUs, its own policy OID."""
    constraints = _extension(certificate, x509.BasicConstraints)
    usage = _extension(certificate, x509.KeyUsage)
    extended = _extension(certificate, x509.ExtendedKeyUsage)
    policies = _extension(certificate, x509.CertificatePolicies)
    wanted_ekus = {
        x509.ObjectIdentifier(EXTENDED_KEY_USAGES[name]) for name in profile.extended_key_usage
    }
    # The first policy of a Hoviyat profile is its own (the others, e.g. ETSI NCP, are shared).
    own_policy = x509.ObjectIdentifier(profile.certificate_policies[0])
    problems: list[str] = []
    if constraints is not None and constraints.ca:
        problems.append("a CA certificate")
    if usage is None or not usage.digital_signature:
        problems.append("no digitalSignature key usage")
    if extended is None or not wanted_ekus <= set(extended):
        problems.append("not the profile's extended key usages (id-kp-clientAuth)")
    if policies is None or own_policy not in {p.policy_identifier for p in policies}:
        problems.append(f"not certified under policy {own_policy.dotted_string}")
    if problems:
        raise PersonCertificateRefused(Refusal.WRONG_PROFILE, "; ".join(problems))


def national_code_of(certificate: x509.Certificate) -> str:
    """The national code in the subject's serialNumber (``PNOIR-<code>``), checked."""
    values = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(values) != 1 or not isinstance(values[0].value, str):
        raise PersonCertificateRefused(
            Refusal.NO_NATIONAL_CODE, "the subject has no single serialNumber attribute"
        )
    value = values[0].value
    digits = value.removeprefix(NATIONAL_CODE_PREFIX)
    if digits == value or len(digits) != 10 or not digits.isascii():
        raise PersonCertificateRefused(
            Refusal.NO_NATIONAL_CODE, "the subject's serialNumber is not PNOIR-<national code>"
        )
    try:
        return validate_national_code(digits)
    except IdentifierError:
        raise PersonCertificateRefused(
            Refusal.NO_NATIONAL_CODE, "the subject's national code is not a valid national code"
        ) from None


# -- OCSP, asked live (RFC 6960) -------------------------------------------------


def _good_by_ocsp(
    ocsp_service: OCSPService, certificate: x509.Certificate, issuer: _Issuer, now: datetime
) -> None:
    nonce = secrets.token_bytes(NONCE_BYTES)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer.certificate, hashes.SHA256())
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    try:
        answer = ocsp_service.respond(request.public_bytes(Encoding.DER))
    except KeyStoreError as exc:
        raise PersonCertificateRefused(
            Refusal.OCSP_UNAVAILABLE, f"the OCSP responder cannot sign: {exc}"
        ) from None
    status = verified_status(answer.der, request, nonce, issuer.certificate, now)
    if status is ocsp.OCSPCertStatus.REVOKED:
        raise PersonCertificateRefused(Refusal.REVOKED, "the certificate is revoked")
    if status is not ocsp.OCSPCertStatus.GOOD:
        raise PersonCertificateRefused(
            Refusal.UNKNOWN_TO_OCSP, "the OCSP responder does not know this certificate"
        )


def _unavailable(detail: str) -> PersonCertificateRefused:
    return PersonCertificateRefused(Refusal.OCSP_UNAVAILABLE, detail)


def verified_status(
    response_der: bytes,
    request: ocsp.OCSPRequest,
    nonce: bytes,
    issuer: x509.Certificate,
    now: datetime,
) -> ocsp.OCSPCertStatus:
    """The status in ``response_der`` once it is proven to answer ``request``, now, for ``issuer``.

    Raises :class:`PersonCertificateRefused` (``ocsp-unavailable``) for anything
    short of that: an error status, a signer that is not ``issuer`` or its
    delegated responder, a bad signature, another CertID, a missing or other
    nonce, stale or future times.
    """
    try:
        response = ocsp.load_der_ocsp_response(response_der)
    except ValueError:
        raise _unavailable("the OCSP answer is not a DER OCSP response") from None
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _unavailable(f"the OCSP responder answered {response.response_status.name}")
    signer = _response_signer(response, issuer, now)
    _check_signature(signer.public_key(), response)
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = b""
    if echoed != nonce:
        raise _unavailable("the OCSP answer does not carry this request's nonce (a replay?)")
    singles = list(response.responses)
    if len(singles) != 1:
        raise _unavailable("the OCSP answer does not hold exactly one status")
    single = singles[0]
    same_id = (
        single.serial_number == request.serial_number
        and single.issuer_name_hash == request.issuer_name_hash
        and single.issuer_key_hash == request.issuer_key_hash
        and single.hash_algorithm.name == request.hash_algorithm.name
    )
    if not same_id:
        raise _unavailable("the OCSP answer is about another certificate")
    # RFC 6960 §3.2 (5)/(6): thisUpdate recent enough, nextUpdate not passed.
    if single.this_update_utc > now + CLOCK_SKEW:
        raise _unavailable("the OCSP answer is dated in the future")
    if single.next_update_utc is None or single.next_update_utc < now:
        raise _unavailable("the OCSP answer is out of date")
    return single.certificate_status


def _response_signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate:
    """RFC 6960 §4.2.2.2: the CA itself, or a responder it certified for OCSP signing."""
    candidates = [issuer, *response.certificates]
    for candidate in candidates:
        if not _named_by_responder_id(response, candidate):
            continue
        if candidate is issuer:
            return issuer
        try:
            candidate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise _unavailable("the OCSP responder certificate is not from the CA") from None
        extended = _extension(candidate, x509.ExtendedKeyUsage)
        if extended is None or ExtendedKeyUsageOID.OCSP_SIGNING not in extended:
            raise _unavailable("the OCSP responder certificate lacks id-kp-OCSPSigning")
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            raise _unavailable("the OCSP responder certificate is not valid now")
        return candidate
    raise _unavailable("the OCSP answer's signer is neither the CA nor its responder")


def _named_by_responder_id(response: ocsp.OCSPResponse, candidate: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == candidate.subject
    key_hash = x509.SubjectKeyIdentifier.from_public_key(candidate.public_key()).digest
    # RFC 6960 §4.2.1 byKey: SHA-1 of the key's BIT STRING, the RFC 5280 method (1) SKI.
    return response.responder_key_hash == key_hash


def _check_signature(public_key: object, response: ocsp.OCSPResponse) -> None:
    data, signature = response.tbs_response_bytes, response.signature
    algorithm = response.signature_hash_algorithm
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            raise _unavailable("the OCSP answer's signature algorithm is not supported")
    except InvalidSignature:
        raise _unavailable("the OCSP answer's signature does not verify") from None
