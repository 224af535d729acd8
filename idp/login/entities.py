"""Acting for a legal entity: may this person act for this entity today, and if not, why.

The deeds registry is the only source. An entity that is dissolved, suspended
or being wound up cannot be acted for; a representation counts only while in
force (``valid_from <= today <= valid_until``). The reason is returned as a
message key of :mod:`idp.login.i18n` with its values, for the page to say in
the citizen's language.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from verifiers.matching import current_representative
from verifiers.registry.base import DeedsRegistry, LegalEntity, Representative

_STATUS_REFUSALS = {
    "dissolved": "err.entity_dissolved",
    "suspended": "err.entity_suspended",
    "in_liquidation": "err.entity_in_liquidation",
}


@dataclass(frozen=True)
class Representation:
    """The answer for one entity: the representation in force, or the reason there is none."""

    national_id: str
    entity: LegalEntity | None
    representative: Representative | None
    refusal: str | None = None
    refusal_values: dict[str, str] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def assess(
    national_id: str, entity: LegalEntity | None, national_code: str, today: date
) -> Representation:
    if entity is None:
        return Representation(national_id, None, None, "err.entity_not_representative")
    listed = [r for r in entity.representatives if r.national_code == national_code]
    if not listed:
        return Representation(national_id, entity, None, "err.entity_not_representative")
    if entity.status in _STATUS_REFUSALS:
        return Representation(national_id, entity, None, _STATUS_REFUSALS[entity.status])
    in_force = current_representative(entity, national_code, today)
    if in_force is not None:
        return Representation(national_id, entity, in_force)
    ended = [r.valid_until for r in listed if r.valid_until is not None and r.valid_until < today]
    if ended:
        last = max(ended)
        return Representation(
            national_id, entity, None, "err.representation_expired", {"date": last.isoformat()}
        )
    first = min(r.valid_from for r in listed)
    return Representation(
        national_id, entity, None, "err.representation_not_started", {"date": first.isoformat()}
    )


def listed_entities(deeds: DeedsRegistry, national_code: str) -> list[str] | None:
    """National identifiers the registry lists this person for, or None if it cannot list.

    The registry interface promises only lookup by identifier; an adapter that
    can also answer "which entities does this person represent?" exposes
    ``entities_represented_by``, and the page then offers them as choices.
    """
    lister: Callable[[str], Iterable[str]] | None = getattr(deeds, "entities_represented_by", None)
    if lister is None:
        return None
    return list(lister(national_code))
