"""Entity step: the legal entity the citizen acts for, checked against the deeds registry.

A refusal (entity dissolved, not a representative, no signing authority...)
says why in the citizen's language (403) and is audited with the entity's
hash, never its identifier.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from idp.audit.log import subject_hash
from idp.login import entities, sessions
from idp.login.forms import Entered, entity_form
from idp.login.i18n import digits_for, translate
from idp.login.steps.posted import Outcome, Posted, Shown, StepEvent
from idp.storage import interactions
from idp.storage.login import LoginSession
from verifiers.identifiers import IdentifierError, validate_national_id


def choose(
    posted: Posted, db_session: Session, session: LoginSession | None, typed: str
) -> Outcome:
    flow, language, hoviyat = posted.flow, posted.language, posted.hoviyat
    if session is None or not flow.wants_entity:
        return posted.back_to_login()
    values = {"entity_national_id": typed[:20]}

    def again(status: int, key: str, *events: StepEvent, **shown: object) -> Shown:
        errors = {"entity_national_id": translate(key, language, **shown)}
        page = entity_form(posted.request, flow, language, session, Entered(status, errors, values))
        return Shown(page, events)

    try:
        national_id = validate_national_id(typed)
    except IdentifierError:
        return again(400, "err.entity_id")
    found = entities.assess(
        national_id,
        hoviyat.registries.deeds.entity(national_id),
        session.national_code,
        date.today(),
    )
    entity_hash = subject_hash(hoviyat.secrets.subject_pepper, national_id)
    if found.refusal is not None:
        refused = StepEvent(
            "entity",
            "refused",
            session.national_code,
            {"reason": found.refusal, "entity_hash": entity_hash},
        )
        shown = {k: digits_for(v, language) for k, v in found.refusal_values.items()}
        return again(403, found.refusal, refused, **shown)
    flow.interaction.entity_national_id = national_id
    interactions.save(db_session, flow.interaction)
    sessions.choose_entity(db_session, session.id, national_id)
    chosen = StepEvent("entity", "success", session.national_code, {"entity_hash": entity_hash})
    return posted.back_to_login(chosen)
