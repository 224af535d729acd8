"""PKCS#10 certificate requests (RFC 2986): parse and check against a profile.

What a CSR can be refused for, each with its own slug: not a CSR at all, or one
whose subject or extensions do not decode or repeat an extension
(``csr-malformed``), a signature algorithm that is not accepted, such as SHA-1
(``csr-signature-algorithm-refused``), a self-signature that does not verify
(``csr-bad-signature``),
a key the profile does not allow (``csr-key-refused``), a key blocked after a
compromise (``csr-key-blocked``, checked by the caller against the database),
a subject or SAN the profile forbids (``csr-subject-refused``, ``csr-san-refused``).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import SignatureAlgorithmOID

from idp.pki.refusals import CertificateRefused
from policies.certificate_profiles import CertificateProfile, key_refusal

MAX_CSR_BYTES = 64 * 1024
_ECDSA: dict[x509.ObjectIdentifier, ec.ECDSA] = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: ec.ECDSA(hashes.SHA256()),
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: ec.ECDSA(hashes.SHA384()),
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: ec.ECDSA(hashes.SHA512()),
}
# Signature algorithms a CSR's proof of possession may use: SHA-2 with ECDSA
# (RFC 5758 3.2), RSA PKCS#1 v1.5 or PSS (RFC 4055), and Ed25519/Ed448 (RFC 8410).
# SHA-1 is refused as the CA/B Forum BR 7.1.3.2 refuse it: a collision could pass
# off a request never signed by the key.
_ACCEPTED_SIGNATURES = frozenset(
    {
        *_ECDSA,
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.RSASSA_PSS,
        SignatureAlgorithmOID.ED25519,
        SignatureAlgorithmOID.ED448,
    }
)
# Exceptions cryptography raises while decoding the parts of a request it parses lazily.
_DECODE_ERRORS = (
    ValueError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,  # not a ValueError: a CSR version other than v1 (0)
)


def parse_csr(data: bytes | str) -> tuple[x509.CertificateSigningRequest, PublicKeyTypes]:
    """The request and its public key (decoded once: it costs as much as a signature check)."""
    raw = data.encode() if isinstance(data, str) else data
    if not raw.strip():
        raise CertificateRefused("csr-malformed", "the CSR is empty")
    if len(raw) > MAX_CSR_BYTES:
        raise CertificateRefused("csr-malformed", f"the CSR is larger than {MAX_CSR_BYTES} bytes")
    try:
        if b"-----BEGIN" in raw:
            csr = x509.load_pem_x509_csr(raw)
        else:
            csr = x509.load_der_x509_csr(raw)
    except _DECODE_ERRORS as exc:
        raise CertificateRefused(
            "csr-malformed",
            "not a PKCS#10 certificate request (expected PEM 'CERTIFICATE REQUEST' or DER): "
            + _one_line(exc),
        ) from None
    _check_signature_algorithm(csr)
    public_key = _decoded_parts(csr)
    try:
        valid = _signature_valid(csr, public_key)
    except (*_DECODE_ERRORS, TypeError) as exc:
        raise CertificateRefused(
            "csr-bad-signature", f"CSR signature cannot be checked: {_one_line(exc)}"
        ) from None
    if not valid:
        raise CertificateRefused(
            "csr-bad-signature",
            "the CSR's self-signature does not verify: it was altered or not signed by its key",
        )
    return csr, public_key


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _check_signature_algorithm(csr: x509.CertificateSigningRequest) -> None:
    oid = csr.signature_algorithm_oid
    if oid in _ACCEPTED_SIGNATURES:
        return
    name = getattr(oid, "_name", "") or "an unknown algorithm"
    hint = "; SHA-1 is not accepted" if "sha1" in name.lower() else ""
    raise CertificateRefused(
        "csr-signature-algorithm-refused",
        f"the CSR is signed with {name} ({oid.dotted_string}){hint}: sign it with SHA-256 or "
        "stronger (ECDSA, RSA or RSA-PSS) or with Ed25519",
    )


def _decoded_parts(csr: x509.CertificateSigningRequest) -> PublicKeyTypes:
    """The public key, after decoding every part :func:`check_csr` reads.

    ``cryptography`` decodes the subject and extensions on first use; doing it
    here turns a repeated extension or an undecodable name into a refusal
    before any decision is made on them (RFC 5280 4.2: one instance of each).
    """
    try:
        public_key = csr.public_key()
    except _DECODE_ERRORS as exc:
        raise CertificateRefused(
            "csr-malformed", f"the CSR's public key does not decode: {_one_line(exc)}"
        ) from None
    try:
        len(csr.subject)
    except _DECODE_ERRORS as exc:
        raise CertificateRefused(
            "csr-malformed", f"the CSR's subject does not decode: {_one_line(exc)}"
        ) from None
    try:
        for extension in csr.extensions:
            extension.value  # noqa: B018 - decoded now, not in the middle of a decision
    except x509.DuplicateExtension as exc:
        raise CertificateRefused(
            "csr-malformed",
            f"the CSR requests the extension {_extension_name(exc.oid)} more than once; "
            "each extension may appear once (RFC 5280 section 4.2)",
        ) from None
    except _DECODE_ERRORS as exc:
        raise CertificateRefused(
            "csr-malformed", f"the CSR's requested extensions do not decode: {_one_line(exc)}"
        ) from None
    return public_key


def _extension_name(oid: x509.ObjectIdentifier) -> str:
    name = getattr(oid, "_name", "")
    return f"{name} ({oid.dotted_string})" if name else oid.dotted_string


def _signature_valid(csr: x509.CertificateSigningRequest, public_key: PublicKeyTypes) -> bool:
    """The CSR's self-signature (RFC 2986 section 3) checked with the key already decoded.

    ``is_signature_valid`` decodes the key a second time; for the ECDSA requests
    of bulk issuance that is a tenth of the check, so they are verified here
    directly, under the hash their signature algorithm names (RFC 5758 3.2).
    Every other algorithm goes to ``cryptography``'s own check.
    """
    algorithm = _ECDSA.get(csr.signature_algorithm_oid)
    if algorithm is None or not isinstance(public_key, ec.EllipticCurvePublicKey):
        return csr.is_signature_valid
    try:
        public_key.verify(csr.signature, csr.tbs_certrequest_bytes, algorithm)
    except InvalidSignature:
        return False
    return True


def csr_dns_names(csr: x509.CertificateSigningRequest) -> tuple[list[str], list[str]]:
    """(dNSNames, descriptions of every other SAN entry) the CSR asks for."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    except _DECODE_ERRORS as exc:
        raise CertificateRefused(
            "csr-malformed", f"the CSR's extensions do not parse: {_one_line(exc)}"
        ) from None
    dns = [name.value.lower() for name in san if isinstance(name, x509.DNSName)]
    other = [
        f"{type(name).__name__}:{name.value}" for name in san if not isinstance(name, x509.DNSName)
    ]
    return dns, other


def check_csr(
    csr: x509.CertificateSigningRequest,
    public_key: PublicKeyTypes,
    profile: CertificateProfile,
    subject: x509.Name,
    dns_names: tuple[str, ...],
) -> None:
    """Refuse what ``profile`` does not allow; the subject and SAN used are ours, not the CSR's."""
    reason = key_refusal(profile, public_key)
    if reason:
        raise CertificateRefused("csr-key-refused", reason)
    if profile.csr_subject == "refuse" and len(csr.subject) and csr.subject != subject:
        raise CertificateRefused(
            "csr-subject-refused",
            f"profile {profile.name} takes the subject from the registry; the CSR asks for "
            f"{csr.subject.rfc4514_string()!r} instead of {subject.rfc4514_string()!r}",
        )
    requested_dns, other = csr_dns_names(csr)
    if profile.csr_san == "ignore":
        return
    if profile.csr_san == "refuse" and (requested_dns or other):
        raise CertificateRefused(
            "csr-san-refused",
            f"profile {profile.name} puts no requester-chosen names in the certificate; "
            f"remove the subjectAltName ({', '.join(requested_dns + other)}) from the CSR",
        )
    if profile.csr_san == "subset":
        if other:
            raise CertificateRefused(
                "csr-san-refused",
                f"profile {profile.name} allows only DNS names in the SAN; "
                f"the CSR also asks for {', '.join(other)}",
            )
        unapproved = sorted(set(requested_dns) - set(dns_names))
        if unapproved:
            raise CertificateRefused(
                "csr-san-refused",
                f"the CSR asks for DNS names that were not approved: {', '.join(unapproved)}",
            )
