"""``/v1`` verification endpoints: persons, mobile numbers, legal entities, representatives.

Unknown identifiers and wrong attributes give answers of the same shape
(design notes, API conventions), and personal data is disclosed only on a full
match and only the fields the caller's service policy grants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar

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


B = TypeVar("B", bound=BaseModel)
# decide(run, body, path parameters) -> (outcome, answer); it runs inside Verification.run.
Decide = Callable[[Verification, B, Mapping[str, str]], tuple[str, BaseModel]]


def _verification(
    path: str, operation: str, model: type[B], answer: type[BaseModel]
) -> Callable[[Decide[B]], Handler]:
    """Serve ``decide`` at ``POST /v1{path}``; the handler returned is its direct route.

    Both ways check the token before the body is read, so a caller without one
    learns nothing about the parser (a 401, never a 400 or 422). FastAPI's
    router parses a body parameter before it solves the route's dependencies,
    so the route declares none: it reads the body as the direct handler does,
    and documents it through ``openapi_extra``.
    """

    def serve(decide: Decide[B]) -> Handler:
        async def answered(request: Request, caller: Caller, hoviyat: Hoviyat) -> Response:
            body = await json_body(request, model)
            run = Verification(hoviyat, caller, operation)
            return _json(await run.run(lambda run: decide(run, body, request.path_params)))

        async def route(
            request: Request,
            caller: Caller = Depends(require_client),
            hoviyat: Hoviyat = Depends(get_hoviyat),
        ) -> Response:
            return await answered(request, caller, hoviyat)

        async def direct(request: Request) -> Response:
            hoviyat: Hoviyat = request.app.state.hoviyat
            return await answered(request, await require_client(request, hoviyat), hoviyat)

        # Read by idp.http.openapi, which puts the model in components.schemas.
        route.body_model = model  # type: ignore[attr-defined]
        documented = _documented_body(model, path)
        router.post(path, response_model=answer, name=decide.__name__, openapi_extra=documented)(
            route
        )
        return direct

    return serve


def _documented_body(model: type[BaseModel], path: str) -> dict[str, Any]:
    """The JSON body and path parameters of a route that reads its own body."""
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
    extra: dict[str, Any] = {"requestBody": {"content": content, "required": True}}
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    if names:
        extra["parameters"] = [
            {"in": "path", "name": name, "required": True,
             "schema": {"title": name.replace("_", " ").title(), "type": "string"}}
            for name in names
        ]  # fmt: skip
    return extra


def _national_code(run: Verification, national_code: str) -> str:
    """The subject's national code, zero-padded only where the caller's service policy says."""
    return validate_national_code(national_code, pad=run.caller.policy.pad_national_code)


@_verification("/persons/verify", "persons.verify", PersonVerifyRequest, VerificationAnswer)
def verify_person(
    run: Verification, body: PersonVerifyRequest, _path: Mapping[str, str]
) -> tuple[str, VerificationAnswer]:
    policy = run.caller.policy
    run.subject = _national_code(run, body.national_code)
    claims = PersonClaims(
        first_name=body.first_name,
        last_name=body.last_name,
        father_name=body.father_name,
        birth_date=parse_date(body.birth_date) if body.birth_date else None,
        national_card_serial=body.national_card_serial,
        postal_code=validate_postal_code(body.postal_code).value if body.postal_code else None,
    )
    run.check_rate()
    person = run.hoviyat.registries.civil.person(run.subject)
    results = compare_person(person, claims)
    match = overall_match(results)
    answer = VerificationAnswer(tracking_code=run.tracking_code, match=match, fields=results)
    if match and person is not None:
        answer.disclosed = disclosed_person(person, policy)
    if policy.distinguish_not_found:
        answer.disclosed["registered"] = person is not None
    return ("match" if match else "no_match"), answer


@_verification("/mobile/verify", "mobile.verify", MobileVerifyRequest, VerificationAnswer)
def verify_mobile(
    run: Verification, body: MobileVerifyRequest, _path: Mapping[str, str]
) -> tuple[str, VerificationAnswer]:
    run.subject = _national_code(run, body.national_code)
    mobile = normalize_mobile(body.mobile)
    run.check_rate()
    owns = run.hoviyat.registries.mobile.owns(run.subject, mobile)
    answer = VerificationAnswer(
        tracking_code=run.tracking_code,
        match=owns,
        fields={"mobile": "match" if owns else "mismatch"},
    )
    if owns and run.caller.policy.discloses_person("phone_number"):
        # The number the registry confirmed, in the E.164 form of the OIDC
        # phone_number claim (OIDC Core §5.1).
        answer.disclosed = {"phone_number": "+98" + mobile[1:]}
    return ("match" if owns else "no_match"), answer


@_verification("/legal-entities/verify", "legal_entities.verify", EntityVerifyRequest, EntityAnswer)
def verify_entity(
    run: Verification, body: EntityVerifyRequest, _path: Mapping[str, str]
) -> tuple[str, EntityAnswer]:
    run.subject = validate_national_id(body.national_id)
    run.check_rate()
    entity = run.hoviyat.registries.deeds.entity(run.subject)
    claims = EntityClaims(name=body.name, registration_number=body.registration_number)
    results = compare_entity(entity, claims)
    match = entity is not None and "mismatch" not in results.values()
    answer = EntityAnswer(tracking_code=run.tracking_code, match=match, fields=results)
    if match and entity is not None:
        answer.status = entity.status
        answer.disclosed = disclosed_entity(entity, run.caller.policy)
    return ("match" if match else "no_match"), answer


@_verification(
    "/legal-entities/{national_id}/representatives/verify",
    "representatives.verify",
    RepresentativeVerifyRequest,
    RepresentativeAnswer,
)
def verify_representative(
    run: Verification, body: RepresentativeVerifyRequest, path: Mapping[str, str]
) -> tuple[str, RepresentativeAnswer]:
    entity_id = validate_national_id(path["national_id"])
    run.subject = _national_code(run, body.national_code)
    run.check_rate()
    entity = run.hoviyat.registries.deeds.entity(entity_id)
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
