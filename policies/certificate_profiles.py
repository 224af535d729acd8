"""Certificate profiles: one TOML file each under ``policies/profiles/``, plus pure checks.

A profile fixes everything about a certificate that is not the subject's data:
the issuing CA, validity, allowed key types, key usage, extended key usage,
certificate policies, AIA/CDP/ocsp-nocheck, what the subject is made from
(``person``: civil registry; ``entity``: deeds registry; ``dns``: names the
operator approved; ``service``: a name the operator gives) and what happens to
the CSR's own subject and SAN (``ignore``, ``refuse``, or for TLS ``subset``).
``lint = false`` switches the pre-signing lint off for bulk issuance.

``issuance = "ceremony"`` marks a profile that confers CA-side power (an OCSP
responder's id-kp-OCSPSigning with ocsp-nocheck, the service's own signing keys
for attestations and the audit log): only the CA's own ceremony commands issue
it, never the operator API. A profile that could sign status answers cannot be
loaded as anything else.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, get_args

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

PROFILES_DIR = Path(__file__).parent / "profiles"

SubjectSource = Literal["person", "entity", "dns", "service"]
CsrSubjectRule = Literal["ignore", "refuse"]
CsrSanRule = Literal["ignore", "refuse", "subset"]
# "operator": POST /v1/certificates and `hoviyat ca issue` may ask for it;
# "ceremony": only the CA's own commands (idp.pki.registration.Pki.ceremony_certificate).
Issuance = Literal["operator", "ceremony"]
# Pre-signing linters (pkilint, in-process): "pkix" (RFC 5280), "cabf-serverauth"
# (CA/B Forum TLS BR, type detected), "etsi:<TYPE>" (ETSI EN 319 412, type named
# as pkilint's lint_etsi_cert -t option, e.g. etsi:NCP-NATURAL-PERSON-CERTIFICATE).
Linter = str
_LINTERS = ("pkix", "cabf-serverauth")

KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
)
EXTENDED_KEY_USAGES = {
    "server_auth": "1.3.6.1.5.5.7.3.1",
    "client_auth": "1.3.6.1.5.5.7.3.2",
    "email_protection": "1.3.6.1.5.5.7.3.4",
    "ocsp_signing": "1.3.6.1.5.5.7.3.9",
    "document_signing": "1.3.6.1.5.5.7.3.36",
}
KEY_TYPES = ("P-256", "P-384", "RSA-2048", "RSA-3072", "RSA-4096", "Ed25519")
_LIST_FIELDS = ("key_types", "key_usage", "extended_key_usage", "certificate_policies", "linters")
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class ProfileError(ValueError):
    """A profile file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class CertificateProfile:
    name: str
    description: str
    issuing_ca: str  # an issuing CA name, or "*" for "the CA it serves" (OCSP responders)
    subject: SubjectSource
    validity_days: int
    key_types: tuple[str, ...]
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    certificate_policies: tuple[str, ...]
    csr_subject: CsrSubjectRule = "ignore"
    csr_san: CsrSanRule = "refuse"
    aia_ocsp: bool = True
    aia_ca_issuers: bool = True
    crl_distribution_point: bool = True
    ocsp_nocheck: bool = False
    subject_key_identifier: bool = True
    max_dns_names: int = 0
    lint: bool = True
    linters: tuple[Linter, ...] = ("pkix",)
    issuance: Issuance = "operator"

    @property
    def ceremony_only(self) -> bool:
        return self.issuance == "ceremony"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "issuing_ca": self.issuing_ca,
            "subject": self.subject,
            "validity_days": self.validity_days,
            "key_types": list(self.key_types),
            "key_usage": list(self.key_usage),
            "extended_key_usage": list(self.extended_key_usage),
            "certificate_policies": list(self.certificate_policies),
            "csr_subject": self.csr_subject,
            "csr_san": self.csr_san,
            "aia_ocsp": self.aia_ocsp,
            "crl_distribution_point": self.crl_distribution_point,
            "ocsp_nocheck": self.ocsp_nocheck,
            "subject_key_identifier": self.subject_key_identifier,
            "lint": self.lint,
            "linters": list(self.linters),
            "issuance": self.issuance,
        }


def _check_choice(path: Path, field: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        raise ProfileError(f"{path.name}: {field} = {value!r}; allowed: {allowed}")


def parse_profile(path: Path) -> CertificateProfile:
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path.name}: {exc}") from exc
    known = set(CertificateProfile.__dataclass_fields__)
    unknown = set(document) - known
    if unknown:
        raise ProfileError(f"{path.name}: unknown fields {sorted(unknown)}")
    for field in _LIST_FIELDS:
        if field in document:
            document[field] = tuple(document[field])
    try:
        profile = CertificateProfile(**document)
    except TypeError as exc:
        raise ProfileError(f"{path.name}: {exc}") from exc
    _check_choice(path, "subject", profile.subject, get_args(SubjectSource))
    _check_choice(path, "csr_subject", profile.csr_subject, get_args(CsrSubjectRule))
    _check_choice(path, "csr_san", profile.csr_san, get_args(CsrSanRule))
    _check_choice(path, "issuance", profile.issuance, get_args(Issuance))
    # RFC 6960 4.2.2.2: an id-kp-OCSPSigning certificate from a CA speaks for that
    # CA's revocation status; with ocsp-nocheck nobody can even check it.
    if (profile.ocsp_nocheck or "ocsp_signing" in profile.extended_key_usage) and (
        not profile.ceremony_only
    ):
        raise ProfileError(
            f"{path.name}: a profile with ocsp_signing or ocsp_nocheck confers CA-side "
            'power and needs issuance = "ceremony"'
        )
    for key_type in profile.key_types:
        _check_choice(path, "key_types", key_type, KEY_TYPES)
    for usage in profile.key_usage:
        _check_choice(path, "key_usage", usage, KEY_USAGES)
    for usage in profile.extended_key_usage:
        _check_choice(path, "extended_key_usage", usage, tuple(EXTENDED_KEY_USAGES))
    for linter in profile.linters:
        if not linter.startswith("etsi:"):
            _check_choice(path, "linters", linter, _LINTERS)
    if not 1 <= profile.validity_days <= 825:
        raise ProfileError(f"{path.name}: validity_days must be 1..825")
    if profile.subject == "dns" and profile.max_dns_names < 1:
        raise ProfileError(f"{path.name}: a dns-subject profile needs max_dns_names >= 1")
    if path.stem != profile.name:
        raise ProfileError(f"{path.name}: name {profile.name!r} must match the file name")
    return profile


@cache
def load_profiles(directory: Path = PROFILES_DIR) -> dict[str, CertificateProfile]:
    return {path.stem: parse_profile(path) for path in sorted(directory.glob("*.toml"))}


def key_type_of(public_key: PublicKeyTypes) -> str:
    """``P-256``, ``RSA-2048``, ``Ed25519``... or a descriptive name for anything else."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return _CURVES.get(public_key.curve.name, public_key.curve.name)
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA-{public_key.key_size}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return type(public_key).__name__.removeprefix("_").replace("PublicKey", "")


def key_refusal(profile: CertificateProfile, public_key: PublicKeyTypes) -> str | None:
    """Why ``public_key`` may not be certified under ``profile``, or None if it may."""
    key_type = key_type_of(public_key)
    allowed = ", ".join(profile.key_types)
    if key_type not in profile.key_types:
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
            return f"RSA key of {public_key.key_size} bits is too small; allowed: {allowed}"
        return f"key type {key_type} is not allowed by profile {profile.name}; allowed: {allowed}"
    if isinstance(public_key, rsa.RSAPublicKey):
        exponent = public_key.public_numbers().e
        # CA/B Forum BR 6.1.6: odd, at least 65537.
        if exponent < 65537 or exponent % 2 == 0:
            return f"RSA public exponent {exponent} is not allowed (odd and >= 65537 required)"
    return None
