"""Identity claims: what a client asked for, what its service policy allows, and the values.

Three steps, each a pure function:

1. :func:`requested_fields` turns scopes (OIDC Core §5.4) and the ``claims``
   request parameter (§5.5) into the policy's person fields the client asks for;
2. the service policy intersects them (:func:`releasable_fields`): a claim the
   policy does not disclose is never released, whatever was requested;
3. :func:`person_claims` / :func:`verified_claims` / :func:`entity_claim` build
   the values from the registry records.

``verified_claims`` follows OpenID Connect for Identity Assurance 1.0: trust
framework ``ir_civil_registry``, evidence of type ``electronic_record`` whose
source is the civil registry, and the time the registry answered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from policies.service_policy import ServicePolicy
from verifiers.registry.base import LegalEntity, Person, Representative

TRUST_FRAMEWORK = "ir_civil_registry"
EVIDENCE_TYPE = "electronic_record"
CIVIL_REGISTRY = "National Organization for Civil Registration (sabteahval.ir)"

# Policy person field -> the OIDC claims that carry it.
FIELD_CLAIMS: dict[str, tuple[str, ...]] = {
    "first_name": ("given_name", "name"),
    "last_name": ("family_name", "name"),
    "father_name": ("father_name",),
    "birth_date": ("birthdate",),
    "gender": ("gender",),
    "postal_code": ("address",),
    "national_code": ("national_code",),
    "phone_number": ("phone_number", "phone_number_verified"),
}
CLAIM_FIELDS: dict[str, tuple[str, ...]] = {}
for _field, _claims in FIELD_CLAIMS.items():
    for _claim in _claims:
        CLAIM_FIELDS.setdefault(_claim, ())
        CLAIM_FIELDS[_claim] += (_field,)

# Scope -> policy person fields (OIDC Core §5.4, plus Hoviyat's own two scopes).
SCOPE_FIELDS: dict[str, tuple[str, ...]] = {
    "openid": (),
    "profile": ("first_name", "last_name", "father_name", "birth_date", "gender"),
    "phone": ("phone_number",),
    "address": ("postal_code",),
    "national_code": ("national_code",),
    # Asks the login pages to offer acting for a legal entity (no person field).
    "legal_entity": (),
}
SUPPORTED_SCOPES = (*SCOPE_FIELDS, "offline_access")
SUPPORTED_CLAIMS = (
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "sid",
    *CLAIM_FIELDS,
    "legal_entity",
    "verified_claims",
)
VERIFIED_CLAIM_NAMES = ("given_name", "family_name", "father_name", "birthdate", "gender",
                        "national_code")  # fmt: skip
CLAIMS_TARGETS = ("userinfo", "id_token")


class ClaimsRequestError(ValueError):
    """The ``claims`` parameter is not the JSON object OIDC Core §5.5 describes."""


def parse_claims_request(raw: str | None) -> dict[str, dict[str, Any]]:
    """§5.5: a JSON object whose members ``userinfo`` / ``id_token`` map claim names."""
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ClaimsRequestError(f"claims is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ClaimsRequestError("claims must be a JSON object")
    parsed: dict[str, dict[str, Any]] = {}
    for target, members in document.items():
        if target not in CLAIMS_TARGETS:
            # §5.5: unknown members are ignored, not errors.
            continue
        if not isinstance(members, dict):
            raise ClaimsRequestError(f"claims.{target} must be a JSON object")
        for name, spec in members.items():
            if spec is not None and not isinstance(spec, dict):
                raise ClaimsRequestError(f"claims.{target}.{name} must be null or an object")
        parsed[target] = members
    return parsed


def _fields_of_claim_names(names: Iterable[str]) -> set[str]:
    fields: set[str] = set()
    for name in names:
        fields.update(CLAIM_FIELDS.get(name, ()))
    return fields


def _verified_claim_names(members: Mapping[str, Any]) -> set[str]:
    request = members.get("verified_claims")
    if not isinstance(request, dict):
        return set()
    claims = request.get("claims")
    return set(claims) if isinstance(claims, dict) else set()


def requested_fields(scopes: Iterable[str], claims_request: Mapping[str, Any]) -> set[str]:
    """Every policy person field the scopes and claims request ask for, anywhere."""
    fields: set[str] = set()
    for scope in scopes:
        fields.update(SCOPE_FIELDS.get(scope, ()))
    for members in claims_request.values():
        fields |= _fields_of_claim_names(members)
        fields |= _fields_of_claim_names(_verified_claim_names(members))
    return fields


def releasable_fields(requested: Iterable[str], policy: ServicePolicy) -> set[str]:
    return {name for name in requested if policy.discloses_person(name)}


def consent_claims(
    scopes: Iterable[str], claims_request: Mapping[str, Any], policy: ServicePolicy
) -> list[str]:
    """The claim names shown on the consent screen: requested and allowed by the policy."""
    fields = releasable_fields(requested_fields(scopes, claims_request), policy)
    names = {claim for field in fields for claim in FIELD_CLAIMS[field]}
    if not {"first_name", "last_name"} <= fields:
        names.discard("name")  # person_claims builds it only from both parts
    if "legal_entity" in scopes:
        names.add("legal_entity")
    wants_verified = any("verified_claims" in members for members in claims_request.values())
    if wants_verified and fields & set(_fields_of_claim_names(VERIFIED_CLAIM_NAMES)):
        names.add("verified_claims")
    return sorted(names)


def person_claims(
    person: Person, fields: Iterable[str], phone_number: str | None = None
) -> dict[str, Any]:
    """Claim values for the given policy fields (§5.1 names where they exist)."""
    wanted = set(fields)
    claims: dict[str, Any] = {}
    if "first_name" in wanted:
        claims["given_name"] = person.first_name
    if "last_name" in wanted:
        claims["family_name"] = person.last_name
    if {"first_name", "last_name"} <= wanted:
        claims["name"] = f"{person.first_name} {person.last_name}"
    if "father_name" in wanted:
        claims["father_name"] = person.father_name
    if "birth_date" in wanted:
        claims["birthdate"] = person.birth_date.isoformat()
    if "gender" in wanted:
        claims["gender"] = person.gender
    if "postal_code" in wanted and person.postal_code:
        claims["address"] = {"postal_code": person.postal_code, "country": "IR"}
    if "national_code" in wanted:
        claims["national_code"] = person.national_code
    if "phone_number" in wanted and phone_number:
        # Only a number the login confirmed with the mobile-ownership registry
        # and a one-time code reaches here, hence verified.
        claims["phone_number"] = phone_number
        claims["phone_number_verified"] = True
    return claims


def select(claims: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    wanted = set(names)
    return {name: value for name, value in claims.items() if name in wanted}


def verified_claims(
    person: Person, fields: Iterable[str], requested_names: Iterable[str], verified_at: datetime
) -> dict[str, Any] | None:
    """OIDC4IDA §5: the registry-backed facts, with how and when they were verified."""
    allowed = person_claims(person, fields)
    names = set(requested_names) or set(VERIFIED_CLAIM_NAMES)
    claims = {name: value for name, value in allowed.items() if name in names}
    if not claims:
        return None
    when = verified_at.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {
        "verification": {
            "trust_framework": TRUST_FRAMEWORK,
            "time": when,
            "evidence": [
                {
                    "type": EVIDENCE_TYPE,
                    "time": when,
                    "record": {
                        "type": "population_register",
                        "source": {"name": CIVIL_REGISTRY, "country_code": "IRN"},
                    },
                }
            ],
        },
        "claims": claims,
    }


def entity_claim(
    entity: LegalEntity, representative: Representative, policy: ServicePolicy
) -> dict[str, Any]:
    """The entity the user acts for, beside the person (as Corppass does)."""
    claim: dict[str, Any] = {
        "national_id": entity.national_id,
        "role": representative.role,
        "signing_authority": representative.signing_authority,
    }
    if policy.discloses_entity("name"):
        claim["name"] = entity.name
    return claim
