"""Subjects made from registry data (design: "Certificates", bylaw Article 13).

- natural person: C=IR, serialNumber=PNOIR-<national code> (ETSI EN 319 412-1
  5.1.3 semantics identifier), givenName, surname and commonName from the civil
  registry;
- legal entity: C=IR, organizationIdentifier=NTRIR-<national identifier>
  (ETSI EN 319 412-1 5.1.4), organizationName and commonName from the deeds registry;
- TLS server: an empty subject and the approved DNS names in a critical SAN
  (CA/B Forum BR 7.1.4.3: the subject adds nothing a client checks);
- a Hoviyat service: C=IR, O=Hoviyat, CN=<service name>.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from ca import names
from ca.names import COUNTRY, ORGANIZATION
from idp.pki.refusals import CertificateRefused
from verifiers.identifiers import IdentifierError, validate_national_code, validate_national_id
from verifiers.registry.base import LegalEntity, Person, Registries, RegistryUnavailable

MAX_NAME_LENGTH = 64  # RFC 5280 upper bounds (ub-common-name, ub-organization-name)


@dataclass(frozen=True)
class SubjectReference:
    """Who the certificate is for, as the operator names it (registry keys, not names)."""

    national_code: str | None = None
    national_id: str | None = None
    dns_names: tuple[str, ...] = ()
    service_name: str | None = None


@dataclass(frozen=True)
class DecidedSubject:
    name: x509.Name
    dns_names: tuple[str, ...]
    identifier: str | None  # national code or national id, hashed into audit and records


def _cut(text: str) -> str:
    return text.strip()[:MAX_NAME_LENGTH]


def person_subject(person: Person) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, f"PNOIR-{person.national_code}"),
            x509.NameAttribute(NameOID.GIVEN_NAME, _cut(person.first_name)),
            x509.NameAttribute(NameOID.SURNAME, _cut(person.last_name)),
            x509.NameAttribute(
                NameOID.COMMON_NAME, _cut(f"{person.first_name} {person.last_name}")
            ),
        ]
    )


def entity_subject(entity: LegalEntity, common_name: str | None = None) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRIR-{entity.national_id}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _cut(entity.name)),
            x509.NameAttribute(NameOID.COMMON_NAME, _cut(common_name or entity.name)),
        ]
    )


def service_subject(service_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, _cut(service_name)),
        ]
    )


def check_dns_name(name: str) -> str:
    """A name the CA may put in a dNSName (:func:`ca.names.check_dns_name`), or a refusal."""
    try:
        return names.check_dns_name(name)
    except names.InvalidDNSName as exc:
        raise CertificateRefused("dns-name-invalid", str(exc)) from None


def _service_name(reference: SubjectReference) -> str:
    name = (reference.service_name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise CertificateRefused(
            "subject-reference-missing",
            f"this profile needs a service name of 1..{MAX_NAME_LENGTH} printable characters",
        )
    return name


def decide_subject(
    source: str, reference: SubjectReference, registries: Registries, max_dns_names: int = 0
) -> DecidedSubject:
    """The subject for a profile whose subject comes from ``source``; refuses what is missing."""
    try:
        if source == "person":
            if not reference.national_code:
                raise CertificateRefused(
                    "subject-reference-missing", "this profile needs the subject's national code"
                )
            code = validate_national_code(reference.national_code)
            person = registries.civil.person(code)
            if person is None or not person.alive:
                raise CertificateRefused(
                    "subject-not-in-registry",
                    "the civil registry has no living person with this national code",
                )
            return DecidedSubject(person_subject(person), (), code)
        if source == "entity":
            if not reference.national_id:
                raise CertificateRefused(
                    "subject-reference-missing",
                    "this profile needs the entity's national identifier",
                )
            national_id = validate_national_id(reference.national_id)
            entity = registries.deeds.entity(national_id)
            if entity is None or entity.status != "active":
                raise CertificateRefused(
                    "subject-not-in-registry",
                    "the deeds registry has no active legal entity with this national identifier",
                )
            return DecidedSubject(entity_subject(entity, reference.service_name), (), national_id)
    except IdentifierError as exc:
        raise CertificateRefused(f"invalid-{exc.field.replace('_', '-')}", str(exc)) from None
    except RegistryUnavailable as exc:
        raise CertificateRefused(
            "registry-unavailable", str(exc), status=503, retry_after=exc.retry_after
        ) from None
    if source == "dns":
        names = tuple(dict.fromkeys(check_dns_name(n) for n in reference.dns_names))
        if not names:
            raise CertificateRefused(
                "subject-reference-missing", "this profile needs at least one DNS name"
            )
        if len(names) > max_dns_names:
            raise CertificateRefused(
                "dns-name-invalid", f"at most {max_dns_names} DNS names per certificate"
            )
        return DecidedSubject(x509.Name([]), names, None)
    return DecidedSubject(service_subject(_service_name(reference)), (), None)
