"""The verification API from the attacker's side: each test is named after its attack.

Real app over its ASGI transport, real policies, real synthetic registry.
Whatever is sent, the answer is a verdict or a 4xx problem, never a 500.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api.helpers import active_entity, living_person
from fastapi.testclient import TestClient
from fixtures_app import client_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from idp.audit.log import subject_hash
from idp.clients import create_client
from idp.storage.models import AuditEntry
from verifiers.digits import PERSIAN_DIGITS

PROBLEM = "application/problem+json"
# An unissued but checksum-valid national code: the synthetic registry has no such person.
UNKNOWN_CODE = "0499370899"
VERDICT_OR_PROBLEM = {200, 400, 401, 403, 404, 405, 413, 415, 422, 429}
VERIFY_PATHS = ("/v1/persons/verify", "/v1/mobile/verify", "/v1/legal-entities/verify")
# Answered by FastAPI's router rather than a direct route: its own JSON parsing.
ROUTED_PATH = "/v1/legal-entities/10380284790/representatives/verify"
FUZZED_PATHS = (*VERIFY_PATHS, ROUTED_PATH)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    return body


def _without_tracking(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body.pop("tracking_code")
    return body


def _client_of(app_client: TestClient, client_id: str, service_code: str) -> str:
    hoviyat = app_client.app.state.hoviyat  # type: ignore[attr-defined]
    with hoviyat.db.session() as session:
        created = create_client(
            session,
            hoviyat.secrets.client_secret_key,
            client_id=client_id,
            name=client_id,
            service_code=service_code,
            grant_types=["client_credentials"],
        )
        secret = created.client_secret
    assert secret
    return client_token(app_client, client_id, secret)


# --- enumeration of registry membership ---------------------------------------------------


def test_attack_enumerate_registry_membership_not_registered_vs_wrong_birth_date_answer_alike(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    person = living_person(synthetic_registry_path)
    wrong_date = "1300-01-01" if person["birth_date"] != "1300-01-01" else "1301-01-01"
    known = app_client.post(
        "/v1/persons/verify",
        json={"national_code": person["national_code"], "birth_date": wrong_date,
              "first_name": "کاوه"},
        headers=_auth(bank_token),
    )  # fmt: skip
    unknown = app_client.post(
        "/v1/persons/verify",
        json={"national_code": UNKNOWN_CODE, "birth_date": wrong_date, "first_name": "کاوه"},
        headers=_auth(bank_token),
    )
    assert _without_tracking(known) == _without_tracking(unknown)
    assert len(known.content) == len(unknown.content)
    assert dict(known.headers).keys() == dict(unknown.headers).keys()


def test_attack_enumerate_mobile_registry_unknown_person_vs_wrong_mobile_answer_alike(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    person = living_person(synthetic_registry_path)
    stranger = "09350000000" if "09350000000" not in person["mobiles"] else "09350000001"
    answers = [
        app_client.post(
            "/v1/mobile/verify",
            json={"national_code": code, "mobile": stranger},
            headers=_auth(bank_token),
        )
        for code in (person["national_code"], UNKNOWN_CODE)
    ]
    assert _without_tracking(answers[0]) == _without_tracking(answers[1])


def test_attack_enumerate_deeds_registry_unknown_entity_vs_wrong_name_answer_alike(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    entity = active_entity(synthetic_registry_path)
    unknown_id = "10380284790" if entity["national_id"] != "10380284790" else "14003906654"
    answers = [
        app_client.post(
            "/v1/legal-entities/verify",
            json={"national_id": national_id, "name": "شرکت ناموجود"},
            headers=_auth(bank_token),
        )
        for national_id in (entity["national_id"], unknown_id)
    ]
    assert _without_tracking(answers[0]) == _without_tracking(answers[1])
    reps = [
        app_client.post(
            f"/v1/legal-entities/{national_id}/representatives/verify",
            json={"national_code": UNKNOWN_CODE},
            headers=_auth(bank_token),
        )
        for national_id in (entity["national_id"], unknown_id)
    ]
    assert _without_tracking(reps[0]) == _without_tracking(reps[1])


# --- scope and operation escalation ---------------------------------------------------------


def test_attack_scope_escalation_token_request_beyond_the_policy_is_refused(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    answer = app_client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "persons.verify legal_entities.verify"},
        auth=("demo-registry", demo_clients["demo-registry"]),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"


def test_attack_operation_escalation_narrow_token_used_for_another_operation_is_refused(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    narrow = client_token(app_client, "demo-bank", demo_clients["demo-bank"], "persons.verify")
    person = living_person(synthetic_registry_path)
    body = {"national_code": person["national_code"], "mobile": person["mobiles"][0]}
    _problem(
        app_client.post("/v1/mobile/verify", json=body, headers=_auth(narrow)),
        403,
        "operation-not-allowed",
    )
    _problem(
        app_client.get(
            "/v1/identifiers/validate", params={"national_code": UNKNOWN_CODE},
            headers=_auth(narrow),
        ),
        403,
        "operation-not-allowed",
    )  # fmt: skip


def test_attack_operation_escalation_policy_without_entities_cannot_verify_an_entity(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    token = client_token(app_client, "demo-registry", demo_clients["demo-registry"])
    entity = active_entity(synthetic_registry_path)
    _problem(
        app_client.post(
            "/v1/legal-entities/verify",
            json={"national_id": entity["national_id"]},
            headers=_auth(token),
        ),
        403,
        "operation-not-allowed",
    )


def test_attack_identifier_oracle_without_a_token_is_refused(app_client: TestClient) -> None:
    answer = app_client.get("/v1/identifiers/validate", params={"national_code": UNKNOWN_CODE})
    _problem(answer, 401, "unauthorized")


def test_attack_identifier_oracle_with_a_policy_lacking_validate_is_refused(
    app_client: TestClient,
) -> None:
    token = _client_of(app_client, "inspector", "demo-investigation")
    answer = app_client.get(
        "/v1/identifiers/validate", params={"national_code": UNKNOWN_CODE}, headers=_auth(token)
    )
    _problem(answer, 403, "operation-not-allowed")


def test_attack_probe_without_credentials_gets_a_bare_bearer_challenge(
    app_client: TestClient, bank_token: str
) -> None:
    """RFC 6750 §3.1: no error code when the request carried no token at all."""
    for headers in ({}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        missing = app_client.post(
            "/v1/persons/verify", json={"national_code": UNKNOWN_CODE}, headers=headers
        )
        _problem(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"] == 'Bearer realm="hoviyat"'
    forged = app_client.post(
        "/v1/persons/verify",
        json={"national_code": UNKNOWN_CODE},
        headers=_auth(bank_token[:-4] + "AAAA"),
    )
    _problem(forged, 401, "unauthorized")
    assert 'error="invalid_token"' in forged.headers["www-authenticate"]


# --- oversized and deeply nested bodies -------------------------------------------------------


def test_attack_oversized_body_is_a_413(app_client: TestClient, bank_token: str) -> None:
    huge = json.dumps({"national_code": UNKNOWN_CODE, "first_name": "x" * 2_000_000})
    answer = app_client.post(
        "/v1/persons/verify",
        content=huge,
        headers={**_auth(bank_token), "Content-Type": "application/json"},
    )
    _problem(answer, 413, "body-too-large")


@pytest.mark.parametrize(
    "path",
    FUZZED_PATHS,
)
def test_attack_deeply_nested_json_is_named_as_too_deep(
    app_client: TestClient, bank_token: str, path: str
) -> None:
    depth = 5_000
    nested = '{"national_code": ' + "[" * depth + "]" * depth + "}"
    answer = app_client.post(
        path,
        content=nested,
        headers={**_auth(bank_token), "Content-Type": "application/json"},
    )
    body = _problem(answer, 400, "json-too-deep")
    assert "nested deeper than" in body["detail"], body


# --- identifiers in disguise -------------------------------------------------------------------


def test_attack_mixed_digit_scripts_and_zero_width_characters_are_one_subject(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    """Alternate spellings of one code must not dodge the per-subject limit or the audit."""
    person = living_person(synthetic_registry_path)
    code = person["national_code"]
    mixed = (
        code[0].translate(str.maketrans("0123456789", PERSIAN_DIGITS))
        + "\u200c"
        + code[1:4].translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
        + "\u200b-\u2067"
        + code[4:]
    )
    codes = []
    for spelling in (code, mixed):
        answer = app_client.post(
            "/v1/persons/verify",
            json={"national_code": spelling, "birth_date": person["birth_date"]},
            headers=_auth(bank_token),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["match"] is True
        codes.append(answer.json()["tracking_code"])
    hoviyat = app_client.app.state.hoviyat  # type: ignore[attr-defined]
    with hoviyat.db.read() as session:
        hashes = {
            entry.subject_hash
            for entry in session.exec(
                select(AuditEntry).where(AuditEntry.tracking_code.in_(codes))  # type: ignore[attr-defined]
            )
        }
    assert hashes == {subject_hash(hoviyat.secrets.subject_pepper, code)}


@pytest.mark.parametrize(
    ("spelling", "rule"),
    [
        ("０４９９３７０８９９", "digits"),  # fullwidth digits are not a digit script of Article 11
        ("04993708⁹9", "digits"),  # a superscript nine passes str.isdigit
        ("0499370899\u0000", "digits"),
        ("\u200c\u200b\u200d", "empty"),
        ("049937089", "length"),  # the API does not pad
    ],
)
def test_attack_identifier_lookalikes_are_refused_with_the_rule(
    app_client: TestClient, bank_token: str, spelling: str, rule: str
) -> None:
    answer = app_client.post(
        "/v1/persons/verify", json={"national_code": spelling}, headers=_auth(bank_token)
    )
    if answer.status_code == 400:  # the NUL byte may be stopped at the front door
        _problem(answer, 400, "invalid-characters")
        return
    body = _problem(answer, 422, "invalid-identifier")
    assert body["rule"] == rule


# --- fuzzing the JSON body parsing --------------------------------------------------------------

_KEYS = ["national_code", "birth_date", "first_name", "mobile", "national_id", "name", "x"]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=12,
)
_FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_FUZZ
@given(path=st.sampled_from(FUZZED_PATHS), document=_JSON)
def test_attack_fuzzed_json_documents_get_a_verdict_or_a_4xx(
    app_client: TestClient, bank_token: str, path: str, document: Any
) -> None:
    answer = app_client.post(path, json=document, headers=_auth(bank_token))
    assert answer.status_code in VERDICT_OR_PROBLEM, answer.text
    if answer.status_code != 200:
        assert answer.headers["content-type"].startswith(PROBLEM)


@_FUZZ
@given(path=st.sampled_from(FUZZED_PATHS), raw=st.binary(max_size=200))
def test_attack_fuzzed_raw_bodies_get_a_verdict_or_a_4xx(
    app_client: TestClient, bank_token: str, path: str, raw: bytes
) -> None:
    answer = app_client.post(
        path, content=raw, headers={**_auth(bank_token), "Content-Type": "application/json"}
    )
    assert answer.status_code in VERDICT_OR_PROBLEM, answer.text
    if answer.status_code != 200:
        assert answer.headers["content-type"].startswith(PROBLEM)


# --- grants that never disclose ---------------------------------------------------------------

WALK_POLICY = "walk-every-field"
_API_DOORS = ("persons.verify", "mobile.verify", "legal_entities.verify")


@pytest.fixture
def hoviyat_settings(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path, server_port: int
) -> Any:
    """The default app, plus a policy granting every field of the schema to the API doors."""
    from idp.settings import Settings
    from policies.service_policy import ENTITY_FIELDS, PERSON_FIELDS

    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / f"{WALK_POLICY}.toml").write_text(
        f'service_code = "{WALK_POLICY}"\n'
        'title_fa = "همه فیلدها"\ntitle_en = "Every field"\nlegal_basis = "test"\n'
        'type = "enterprise"\n'
        f"operations = {json.dumps(list(_API_DOORS))}\n"
        "[disclosure]\n"
        f"person = {json.dumps(sorted(PERSON_FIELDS))}\n"
        f"entity = {json.dumps(sorted(ENTITY_FIELDS))}\n",
        encoding="utf-8",
    )
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="synthetic",
        registry_path=synthetic_registry_path,
        policies_dir=policies,
        issuer=f"http://127.0.0.1:{server_port}",
    )


def test_attack_policy_granting_a_field_no_operation_of_it_discloses_is_refused_at_load() -> None:
    from policies.service_policy import (
        ENTITY_FIELD_DOORS,
        ENTITY_FIELDS,
        OPERATIONS,
        PERSON_FIELD_DOORS,
        PERSON_FIELDS,
        PolicyError,
        parse_policy,
    )

    assert set(PERSON_FIELD_DOORS) == PERSON_FIELDS
    assert set(ENTITY_FIELD_DOORS) == ENTITY_FIELDS
    base = {"service_code": "x", "title_fa": "x", "title_en": "x", "legal_basis": "x",
            "type": "enterprise"}  # fmt: skip
    for kind, doors in (("person", PERSON_FIELD_DOORS), ("entity", ENTITY_FIELD_DOORS)):
        for name, disclosing in doors.items():
            grant = {"disclosure": {kind: [name]}}
            with pytest.raises(PolicyError, match=name):
                parse_policy({**base, **grant, "operations": sorted(OPERATIONS - disclosing)})
            for door in disclosing:
                assert parse_policy({**base, **grant, "operations": [door]})


def test_attack_every_grantable_field_is_really_disclosed_by_each_door_that_claims_it(
    app_client: TestClient, synthetic_registry_path: Path
) -> None:
    """Walk the policy schema: each (field, door) pair the policy module names discloses."""
    from idp.oidc import claims as oidc_claims
    from idp.reconciliation.legacy_csv import LegacyRow
    from idp.reconciliation.rows import reconcile_row
    from policies.service_policy import ENTITY_FIELD_DOORS, PERSON_FIELD_DOORS
    from verifiers.registry.synthetic import SyntheticRegistry

    token = _client_of(app_client, "walker", WALK_POLICY)
    person = living_person(synthetic_registry_path)
    entity = active_entity(synthetic_registry_path)
    hoviyat = app_client.app.state.hoviyat  # type: ignore[attr-defined]
    policy = hoviyat.policies[WALK_POLICY]
    registry = SyntheticRegistry(synthetic_registry_path)
    record = registry.person(person["national_code"])
    company = registry.entity(entity["national_id"])
    assert record is not None and company is not None
    dead = next(p for p, _m in registry.iter_persons(2000) if not p.alive)

    verified = app_client.post(
        "/v1/persons/verify",
        json={"national_code": person["national_code"], "birth_date": person["birth_date"]},
        headers=_auth(token),
    ).json()
    mobile = app_client.post(
        "/v1/mobile/verify",
        json={"national_code": person["national_code"], "mobile": person["mobiles"][0]},
        headers=_auth(token),
    ).json()
    registered = app_client.post(
        "/v1/legal-entities/verify", json={"national_id": entity["national_id"]},
        headers=_auth(token),
    ).json()  # fmt: skip
    assert verified["match"] and mobile["match"] and registered["match"]

    def reconciled(name: str) -> bool:
        subject = dead if name == "alive" else record
        known = "last_name" if name == "first_name" else "first_name"
        row = LegacyRow(1, {"national_code": subject.national_code,
                            known: getattr(subject, known)})  # fmt: skip
        result = reconcile_row(row, registry, policy)
        return name in result.filled or (name == "alive" and "deceased" in result.reasons)

    person_doors = {
        "persons.verify": lambda name: name in verified["disclosed"],
        "mobile.verify": lambda name: name in mobile["disclosed"],
        "oidc.login": lambda name: bool(
            oidc_claims.person_claims(record, {name}, "+98" + person["mobiles"][0][1:])
        ),
        "reconciliations.create": reconciled,
    }
    entity_doors = {
        "legal_entities.verify": lambda name: (
            name in registered["disclosed"]
            or (name == "status" and registered["status"] == entity["status"])
        ),
        "oidc.login": lambda name: (
            name in oidc_claims.entity_claim(company, company.representatives[0], policy)
        ),
    }
    silent = [
        (name, door)
        for name, doors in PERSON_FIELD_DOORS.items()
        for door in doors
        if not person_doors[door](name)
    ] + [
        (name, door)
        for name, doors in ENTITY_FIELD_DOORS.items()
        for door in doors
        if not entity_doors[door](name)
    ]
    registry.close()
    assert silent == []
    assert mobile["disclosed"] == {"phone_number": "+98" + person["mobiles"][0][1:]}


def test_attack_probe_of_access_history_without_credentials_gets_a_bare_bearer_challenge(
    app_client: TestClient,
) -> None:
    """RFC 6750 §3.1 holds on the citizen's endpoint too."""
    missing = app_client.get("/v1/me/access-history")
    _problem(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == 'Bearer realm="hoviyat"'
