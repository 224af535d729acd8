"""The newOrder payload (RFC 8555 §7.4), checked before anything is written.

DNS identifiers only (§9.7.7; ``ip`` and any other type is
``unsupportedIdentifier``), each normalised (:func:`policies.acme.normalise_name`)
and one a certificate may carry at all (:func:`ca.names.check_dns_name`: no
public suffix, no Internal Name), at most ``settings.max_identifiers``;
``notBefore``/``notAfter`` refused, as the profile decides validity; a
``profile`` (draft-ietf-acme-profiles) among those this CA offers, else
``invalidProfile``; ``replaces`` a string (RFC 9773 §5, checked by
:func:`idp.acme.rfc9773.check_replaces`). Then the entity's service policy
(:func:`policies.acme.names_refused`): ``rejectedIdentifier`` with one
subproblem per name it may not order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ca import names as ca_names
from idp.acme.problems import AcmeProblem
from idp.acme.settings import AcmeSettings
from policies.acme import NameRefused, names_refused, normalise_name
from policies.service_policy import ServicePolicy


@dataclass(frozen=True)
class OrderRequest:
    """A newOrder payload, checked: the names normalised, the profile decided."""

    names: tuple[str, ...]
    profile: str
    replaces: str | None


def _identifier_problem(kind: str, value: object, detail: str) -> dict[str, Any]:
    shown = value if isinstance(value, str) else repr(value)[:100]
    return {
        "type": f"urn:ietf:params:acme:error:{kind}",
        "detail": detail,
        "identifier": {"type": "dns", "value": shown[:300]},
    }


def _names(identifiers: object, settings: AcmeSettings) -> tuple[str, ...]:
    if not isinstance(identifiers, list) or not identifiers:
        raise AcmeProblem("malformed", "identifiers must be a non-empty list (§7.4)")
    if len(identifiers) > settings.max_identifiers:
        raise AcmeProblem(
            "rejectedIdentifier",
            f"an order may name at most {settings.max_identifiers} identifiers",
        )
    unsupported: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    found: list[str] = []
    for identifier in identifiers:
        if not isinstance(identifier, dict) or not isinstance(identifier.get("value"), str):
            raise AcmeProblem("malformed", "each identifier is an object with type and value")
        kind, value = identifier.get("type"), identifier["value"]
        if kind != "dns":
            unsupported.append(
                {
                    "type": "urn:ietf:params:acme:error:unsupportedIdentifier",
                    "detail": f"identifier type {str(kind)[:20]!r} is not issued here; "
                    "only dns names",
                    "identifier": {"type": str(kind)[:20], "value": value[:300]},
                }
            )
            continue
        try:
            name = normalise_name(value)
            # What the certificate may carry at all: no public suffix, no
            # Internal Name (CA/B BR 3.2.2.6, 1.6.1); refused now, not at finalize.
            ca_names.check_dns_name(name)
        except (NameRefused, ca_names.InvalidDNSName) as exc:
            rejected.append(_identifier_problem("rejectedIdentifier", value, str(exc)))
            continue
        found.append(name)
    if unsupported:
        raise AcmeProblem(
            "unsupportedIdentifier",
            "only dns identifiers are issued by this server",
            subproblems=unsupported + rejected,
        )
    if rejected:
        raise AcmeProblem(
            "rejectedIdentifier", "some identifiers cannot be issued", subproblems=rejected
        )
    return tuple(dict.fromkeys(found))


def _profile(payload: dict[str, Any], offered: tuple[str, ...], default: str) -> str:
    if "profile" not in payload:
        if default in offered:
            return default
        if offered:
            return offered[0]
        raise AcmeProblem("invalidProfile", "this CA offers no certificate profile over ACME")
    profile = payload["profile"]
    if not isinstance(profile, str) or profile not in offered:
        raise AcmeProblem(
            "invalidProfile",
            f"profile {str(profile)[:60]!r} is not offered here; offered: {', '.join(offered)}",
        )
    return profile


def parse_order_request(
    payload: dict[str, Any] | None, settings: AcmeSettings, offered: tuple[str, ...]
) -> OrderRequest:
    """The newOrder payload (§7.4), or :class:`AcmeProblem` saying which member is wrong."""
    if payload is None:
        raise AcmeProblem("malformed", "newOrder takes a JSON object, not POST-as-GET")
    for member in ("notBefore", "notAfter"):
        if member in payload:
            raise AcmeProblem(
                "malformed",
                f"{member} is not accepted: the certificate profile decides the validity",
            )
    replaces = payload.get("replaces")
    if replaces is not None and not isinstance(replaces, str):
        raise AcmeProblem("malformed", "replaces must be a certID string (RFC 9773 §5)")
    return OrderRequest(
        names=_names(payload.get("identifiers"), settings),
        profile=_profile(payload, offered, settings.default_profile),
        replaces=replaces,
    )


def refused_by_policy(policy: ServicePolicy | None, names: tuple[str, ...]) -> AcmeProblem | None:
    """rejectedIdentifier with one subproblem per name the entity may not order."""
    refused = (
        [(name, "the account's service policy allows no names") for name in names]
        if policy is None
        else names_refused(policy, names)
    )
    if not refused:
        return None
    return AcmeProblem(
        "rejectedIdentifier",
        f"{len(refused)} of the names are outside what this entity may order",
        subproblems=[
            _identifier_problem("rejectedIdentifier", name, reason) for name, reason in refused
        ],
    )
