"""The identity behind a grant: registry records turned into the claims a client may see.

Looked up when tokens are issued and at userinfo, never cached in the grant,
so a death, a dissolution or an ended representation recorded since the login
stops the flow at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from idp.context import Hoviyat
from idp.oidc import claims as oidc_claims
from idp.oidc.pairwise import pairwise_salt, pairwise_subject, sector_of
from idp.storage.models import Client
from idp.storage.oidc import GrantRecord
from policies.service_policy import ServicePolicy
from verifiers.registry.base import Person, RegistryUnavailable


class IdentityRefused(ValueError):
    """The person or entity may no longer log in or act (the message says why)."""


Target = Literal["userinfo", "id_token"]


@dataclass(frozen=True)
class Identity:
    """The pairwise subject and the claim set of one target (``userinfo`` holds ``sub``)."""

    subject: str
    claims: dict[str, Any]


def subject_for(hoviyat: Hoviyat, client: Client, national_code: str) -> str:
    sector = sector_of(client.sector_identifier, client.redirect_uris, client.client_id)
    return pairwise_subject(sector, national_code, pairwise_salt(hoviyat.secrets.subject_pepper))


def policy_for(hoviyat: Hoviyat, client: Client) -> ServicePolicy:
    policy = hoviyat.policies.get(client.service_code)
    if policy is None or not policy.allows("oidc.login"):
        raise IdentityRefused(f"service policy {client.service_code} does not allow OIDC login")
    return policy


def _entity_claim(
    hoviyat: Hoviyat, grant: GrantRecord, policy: ServicePolicy
) -> dict[str, Any] | None:
    if grant.entity_national_id is None:
        return None
    entity = hoviyat.registries.deeds.entity(grant.entity_national_id)
    if entity is None or entity.status != "active":
        raise IdentityRefused("the legal entity is not active in the deeds registry")
    today = date.today()
    for representative in entity.representatives:
        if representative.national_code == grant.national_code and representative.is_current(today):
            return oidc_claims.entity_claim(entity, representative, policy)
    raise IdentityRefused("the user no longer represents this legal entity")


def _target(
    target: Target,
    grant: GrantRecord,
    policy: ServicePolicy,
    person: Person,
    scope: list[str],
    verified_at: datetime,
) -> dict[str, Any]:
    members = grant.claims_request.get(target, {})
    if target == "userinfo":
        asked = oidc_claims.requested_fields(scope, {"userinfo": members})
    else:
        asked = oidc_claims.requested_fields((), {"id_token": members})
    fields = oidc_claims.releasable_fields(asked, policy)
    released = oidc_claims.person_claims(person, fields, grant.phone_number)
    if target == "id_token":
        # Only what the claims parameter asked for goes in the ID token (§5.4, §5.5).
        released = oidc_claims.select(released, members)
    request = members.get("verified_claims")
    if isinstance(request, dict):
        inner = request.get("claims")
        wanted: list[str] = list(inner) if isinstance(inner, dict) else []
        verified = oidc_claims.verified_claims(person, fields, wanted, verified_at)
        if verified is not None:
            released["verified_claims"] = verified
    return released


def _living_person(hoviyat: Hoviyat, grant: GrantRecord) -> Person:
    person = hoviyat.registries.civil.person(grant.national_code)
    if person is None or not person.alive:
        raise IdentityRefused("the civil registry no longer lists this person as living")
    return person


def identity_for(
    hoviyat: Hoviyat,
    client: Client,
    grant: GrantRecord,
    scope: list[str] | None = None,
    *,
    target: Target,
) -> Identity:
    """The ``target`` claims for ``grant``; raises :class:`IdentityRefused` or
    ``RegistryUnavailable``. Every check runs whichever set is asked for."""
    policy = policy_for(hoviyat, client)
    person = _living_person(hoviyat, grant)
    effective_scope = list(scope if scope is not None else grant.scope)
    claims = _target(target, grant, policy, person, effective_scope, datetime.now(UTC))
    entity = _entity_claim(hoviyat, grant, policy)
    if entity is not None:
        claims["legal_entity"] = entity
    subject = subject_for(hoviyat, client, grant.national_code)
    if target == "userinfo":
        claims["sub"] = subject
    return Identity(subject=subject, claims=claims)


def identity_or(
    hoviyat: Hoviyat,
    client: Client,
    grant: GrantRecord,
    scope: list[str],
    *,
    target: Target,
    refused: Callable[[str], Exception],
    unavailable: Callable[[RegistryUnavailable], Exception],
) -> Identity:
    """:func:`identity_for`, its two refusals raised as the endpoint's own errors
    (OAuth errors at /token, problems at /userinfo)."""
    try:
        return identity_for(hoviyat, client, grant, scope, target=target)
    except IdentityRefused as exc:
        raise refused(str(exc)) from None
    except RegistryUnavailable as exc:
        raise unavailable(exc) from None
