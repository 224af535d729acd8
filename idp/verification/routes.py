"""``/v1`` verification endpoints: persons, mobile numbers, legal entities, representatives.

Unknown identifiers and wrong attributes give answers of the same shape
(design notes, API conventions), and personal data is disclosed only on a full
match and only the fields the caller's service policy grants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from idp.context import Hoviyat, get_hoviyat
from idp.http.auth import Caller, require_client
from idp.http.direct import Handler, json_body
from idp.problems import bad_request, problem_responses
from idp.verification.recorder import Verification
from idp.verification.schemas import (
    EntityAnswer,
    EntityVerifyRequest,
    IdentifierCheck,
    MobileVerifyRequest,
    PersonVerifyRequest,
    RepresentativeAnswer,
    RepresentativeVerifyRequest,
    VerificationAnswer,
)
from policies.service_policy import ServicePolicy
from verifiers.dates import parse_date, to_jalali
from verifiers.identifiers import (
    IdentifierError,
    validate_national_code,
    validate_national_id,
    validate_postal_code,
)
from verifiers.matching import (
    EntityClaims,
    PersonClaims,
    compare_entity,
    compare_person,
    overall_match,
)
from verifiers.mobile import normalize_mobile
from verifiers.registry import LegalEntity, Person

router = APIRouter(
    prefix="/v1",
    tags=["verification"],
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 503),
)


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _json(answer: BaseModel) -> Response:
    """The answer as JSON; ``response_model`` documents it, this skips re-validating it."""
    return Response(orjson.dumps(answer.model_dump(mode="json")), media_type="application/json")


def disclosed_person(person: Person, policy: ServicePolicy) -> dict[str, Any]:
    fields = {
        name: getattr(person, name) for name in policy.person_disclosure if hasattr(person, name)
    }
    if "birth_date" in fields:
        fields["birth_date_jalali"] = to_jalali(person.birth_date)
    return {name: _json_value(value) for name, value in sorted(fields.items())}


def disclosed_entity(entity: LegalEntity, policy: ServicePolicy) -> dict[str, Any]:
    return {
        name: _json_value(getattr(entity, name))
        for name in sorted(policy.entity_disclosure)
        if name != "status"
    }


@router.post("/persons/verify", response_model=VerificationAnswer)
async def verify_person(
    body: PersonVerifyRequest,
    caller: Caller = Depends(require_client),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> Response:
    def decide(run: Verification) -> tuple[str, VerificationAnswer]:
        run.subject = validate_national_code(
            body.national_code, pad=caller.policy.pad_national_code
        )
        claims = PersonClaims(
            first_name=body.first_name,
            last_name=body.last_name,
            father_name=body.father_name,
            birth_date=parse_date(body.birth_date) if body.birth_date else None,
            national_card_serial=body.national_card_serial,
            postal_code=validate_postal_code(body.postal_code).value if body.postal_code else None,
        )
        run.check_rate()
        person = hoviyat.registries.civil.person(run.subject)
        results = compare_person(person, claims)
        match = overall_match(results)
        answer = VerificationAnswer(tracking_code=run.tracking_code, match=match, fields=results)
        if match and person is not None:
            answer.disclosed = disclosed_person(person, caller.policy)
        if caller.policy.distinguish_not_found:
            answer.disclosed["registered"] = person is not None
        return ("match" if match else "no_match"), answer

    return _json(await Verification(hoviyat, caller, "persons.verify").run(decide))


@router.post("/mobile/verify", response_model=VerificationAnswer)
async def verify_mobile(
    body: MobileVerifyRequest,
    caller: Caller = Depends(require_client),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> Response:
    def decide(run: Verification) -> tuple[str, VerificationAnswer]:
        run.subject = validate_national_code(
            body.national_code, pad=caller.policy.pad_national_code
        )
        mobile = normalize_mobile(body.mobile)
        run.check_rate()
        owns = hoviyat.registries.mobile.owns(run.subject, mobile)
        answer = VerificationAnswer(
            tracking_code=run.tracking_code,
            match=owns,
            fields={"mobile": "match" if owns else "mismatch"},
        )
        if owns and caller.policy.discloses_person("phone_number"):
            # The number the registry confirmed, in the E.164 form of the OIDC
            # phone_number claim (OIDC Core §5.1).
            answer.disclosed = {"phone_number": "+98" + mobile[1:]}
        return ("match" if owns else "no_match"), answer

    return _json(await Verification(hoviyat, caller, "mobile.verify").run(decide))


@router.post("/legal-entities/verify", response_model=EntityAnswer)
async def verify_entity(
    body: EntityVerifyRequest,
    caller: Caller = Depends(require_client),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> Response:
    def decide(run: Verification) -> tuple[str, EntityAnswer]:
        run.subject = validate_national_id(body.national_id)
        run.check_rate()
        entity = hoviyat.registries.deeds.entity(run.subject)
        claims = EntityClaims(name=body.name, registration_number=body.registration_number)
        results = compare_entity(entity, claims)
        match = entity is not None and "mismatch" not in results.values()
        answer = EntityAnswer(tracking_code=run.tracking_code, match=match, fields=results)
        if match and entity is not None:
            answer.status = entity.status
            answer.disclosed = disclosed_entity(entity, caller.policy)
        return ("match" if match else "no_match"), answer

    return _json(await Verification(hoviyat, caller, "legal_entities.verify").run(decide))


@router.post(
    "/legal-entities/{national_id}/representatives/verify", response_model=RepresentativeAnswer
)
async def verify_representative(
    national_id: str,
    body: RepresentativeVerifyRequest,
    caller: Caller = Depends(require_client),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> Response:
    def decide(run: Verification) -> tuple[str, RepresentativeAnswer]:
        entity_id = validate_national_id(national_id)
        run.subject = validate_national_code(
            body.national_code, pad=caller.policy.pad_national_code
        )
        run.check_rate()
        entity = hoviyat.registries.deeds.entity(entity_id)
        today = datetime.now(UTC).date()
        current = None
        if entity is not None and entity.status == "active":
            current = next(
                (
                    rep
                    for rep in entity.representatives
                    if rep.national_code == run.subject and rep.is_current(today)
                ),
                None,
            )
        answer = RepresentativeAnswer(tracking_code=run.tracking_code, match=current is not None)
        if current is not None:
            answer.role = current.role
            answer.signing_authority = current.signing_authority
            answer.valid_until = current.valid_until.isoformat() if current.valid_until else None
        return ("match" if current else "no_match"), answer

    return _json(await Verification(hoviyat, caller, "representatives.verify").run(decide))


def _check(validate: Any, value: str | None) -> IdentifierCheck | None:
    if value is None:
        return None
    try:
        result = validate(value)
    except IdentifierError as error:
        return IdentifierCheck(valid=False, rule=error.rule, message=error.message)
    if hasattr(result, "warnings"):
        return IdentifierCheck(valid=True, value=result.value, warnings=list(result.warnings))
    return IdentifierCheck(valid=True, value=result)


@router.get("/identifiers/validate", response_model=dict[str, IdentifierCheck])
def validate_identifiers(
    national_code: str | None = None,
    national_id: str | None = None,
    postal_code: str | None = None,
    caller: Caller = Depends(require_client),
) -> dict[str, IdentifierCheck]:
    """Format checks only: no registry is asked and nothing is recorded.

    Still a back-office operation like the others (the OpenAPI document
    promises 401/403): a client whose service policy lacks
    ``identifiers.validate`` is refused.
    """
    caller.require_operation("identifiers.validate")
    checks = {
        "national_code": _check(validate_national_code, national_code),
        "national_id": _check(validate_national_id, national_id),
        "postal_code": _check(validate_postal_code, postal_code),
    }
    answer = {name: check for name, check in checks.items() if check is not None}
    if not answer:
        raise bad_request(
            "missing-identifier", "give at least one of national_code, national_id, postal_code"
        )
    return answer


def _direct(model: type[BaseModel], endpoint: Any) -> Handler:
    """``endpoint`` answered directly (idp.http.direct): same checks, in the same order."""

    async def handler(request: Request) -> Response:
        hoviyat: Hoviyat = request.app.state.hoviyat
        caller = await require_client(request, hoviyat)
        body = await json_body(request, model)
        response: Response = await endpoint(body=body, caller=caller, hoviyat=hoviyat)
        return response

    return handler


# Direct handlers of the busiest paths, listed in idp.features.
verify_person_direct = _direct(PersonVerifyRequest, verify_person)
verify_mobile_direct = _direct(MobileVerifyRequest, verify_mobile)
verify_entity_direct = _direct(EntityVerifyRequest, verify_entity)
