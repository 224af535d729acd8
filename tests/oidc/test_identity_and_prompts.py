"""What a login yields: entity representation, levels, verified_claims, prompt handling."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc_support import (
    RelyingParty,
    authorization_params,
    code_for,
    complete,
    exchange,
    finish_interaction,
    interaction_of,
    log_in,
    pkce_pair,
    query_of,
    register_rp,
    session_cookie,
)
from sqlmodel import select

from idp.login.consent import remember_consent
from idp.storage.models import AuditEntry
from idp.storage.oidc import OidcInteraction
from policies import assurance
from verifiers.registry.base import LegalEntity, Person


def payload(jwt: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))


def test_representative_at_substantial_gets_entity_phone_and_verified_claims(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    rp: RelyingParty,
    representative: tuple[Person, LegalEntity],
) -> None:
    person, entity = representative
    db = hoviyat_app.state.hoviyat.db
    login = log_in(db, person.national_code, assurance.SUBSTANTIAL)
    claims_request = {
        "id_token": {
            "given_name": None,
            "verified_claims": {
                "verification": {"trust_framework": None},
                "claims": {"given_name": None, "family_name": None, "birthdate": None},
            },
        }
    }
    verifier, challenge = pkce_pair()
    params = authorization_params(
        rp,
        challenge,
        scope="openid profile phone national_code legal_entity",
        acr_values=assurance.SUBSTANTIAL,
        claims=json.dumps(claims_request),
    )
    response = asgi_browser.get("/authorize", params=params)
    interaction_id = interaction_of(response)
    with db.read() as session:
        interaction = session.get(OidcInteraction, interaction_id)
        assert interaction is not None
        # What the consent screen will list: asked for and allowed by the tax policy.
        assert set(interaction.requested_claims) >= {
            "given_name", "national_code", "phone_number", "legal_entity", "verified_claims",
        }  # fmt: skip
        assert interaction.params["acr_values"] == [assurance.SUBSTANTIAL]
    finish_interaction(db, interaction_id, login, entity_national_id=entity.national_id)
    code = query_of(complete(asgi_browser, interaction_id).headers["location"])["code"]
    tokens = exchange(asgi_browser, rp, code, verifier).json()

    id_token = payload(tokens["id_token"])
    assert id_token["acr"] == assurance.SUBSTANTIAL
    assert id_token["amr"] == ["kba", "otp", "sms"]
    assert id_token["given_name"] == person.first_name
    assert "national_code" not in id_token  # asked by scope: userinfo only (OIDC Core §5.4)
    entity_claim = id_token["legal_entity"]
    assert entity_claim["national_id"] == entity.national_id
    assert entity_claim["name"] == entity.name
    (rep,) = [r for r in entity.representatives if r.national_code == person.national_code][:1]
    assert entity_claim["role"] == rep.role
    assert entity_claim["signing_authority"] == rep.signing_authority
    verified = id_token["verified_claims"]
    assert verified["verification"]["trust_framework"] == "ir_civil_registry"
    assert verified["verification"]["evidence"][0]["type"] == "electronic_record"
    assert verified["claims"] == {
        "given_name": person.first_name,
        "family_name": person.last_name,
        "birthdate": person.birth_date.isoformat(),
    }

    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    info = asgi_browser.get("/userinfo", headers=bearer).json()
    assert info["national_code"] == person.national_code
    assert info["phone_number"] == "+989121234567"
    assert info["phone_number_verified"] is True
    assert info["legal_entity"] == entity_claim

    # Every token event of this login carries the interaction's tracking code.
    with db.read() as session:
        tracking = session.get(OidcInteraction, interaction_id).tracking_code  # type: ignore[union-attr]
        events = session.exec(select(AuditEntry).where(AuditEntry.tracking_code == tracking)).all()
    assert [e.event_type for e in events] == ["authorization_code_issued", "token_issued"]
    assert all(e.subject_hash and person.national_code not in e.subject_hash for e in events)


def test_policy_without_national_code_never_releases_it(
    hoviyat_app: FastAPI, asgi_browser: TestClient, citizen: Person
) -> None:
    bank = register_rp(hoviyat_app, "rp-bank", service="demo-bank-kyc")
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    params = authorization_params(
        bank,
        challenge,
        scope="openid profile national_code",
        claims=json.dumps({"id_token": {"national_code": {"essential": True}}}),
    )
    tokens = exchange(
        asgi_browser, bank, code_for(hoviyat_app, asgi_browser, params, login), verifier
    ).json()
    assert "national_code" not in payload(tokens["id_token"])
    info = asgi_browser.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    assert "national_code" not in info
    assert "father_name" not in info  # not in the bank's disclosure either
    assert info["given_name"] == citizen.first_name


def test_pairwise_subjects_differ_between_sectors(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    other = register_rp(hoviyat_app, "rp-elsewhere", redirect_uris=["https://other.example/cb"])
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    subjects = []
    for client in (rp, other, rp):
        verifier, challenge = pkce_pair()
        code = code_for(hoviyat_app, asgi_browser, authorization_params(client, challenge), login)
        subjects.append(
            payload(exchange(asgi_browser, client, code, verifier).json()["id_token"])["sub"]
        )
    assert subjects[0] == subjects[2]
    assert subjects[0] != subjects[1]


def test_prompt_none_answers_from_the_session_and_remembered_consent(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    db = hoviyat_app.state.hoviyat.db
    verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge, prompt="none")
    no_session = asgi_browser.get("/authorize", params=params)
    assert query_of(no_session.headers["location"])["error"] == "login_required"

    login = log_in(db, citizen.national_code)
    cookies = session_cookie(hoviyat_app, login)
    no_consent = asgi_browser.get("/authorize", params=params, cookies=cookies)
    assert query_of(no_consent.headers["location"])["error"] == "consent_required"

    with db.session() as session:
        remember_consent(
            session, citizen.national_code, rp.client_id, ["family_name", "given_name", "name",
                                                           "birthdate", "father_name", "gender"]
        )  # fmt: skip
    silent = asgi_browser.get("/authorize", params=params, cookies=cookies)
    answer = query_of(silent.headers["location"])
    assert answer["state"] == params["state"]
    assert exchange(asgi_browser, rp, answer["code"], verifier).status_code == 200

    higher = authorization_params(rp, challenge, prompt="none", acr_values=assurance.SUBSTANTIAL)
    step_up = asgi_browser.get("/authorize", params=higher, cookies=cookies)
    assert query_of(step_up.headers["location"])["error"] == "login_required"
    entity = authorization_params(rp, challenge, prompt="none", scope="openid legal_entity")
    pick = asgi_browser.get("/authorize", params=entity, cookies=cookies)
    assert query_of(pick.headers["location"])["error"] == "interaction_required"


def test_completion_enforces_level_freshness_consent_and_reports_errors(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    db = hoviyat_app.state.hoviyat.db
    login = log_in(db, citizen.national_code)
    _, challenge = pkce_pair()

    def outcome(params: dict[str, str], **finish: Any) -> dict[str, str]:
        response = asgi_browser.get("/authorize", params=params)
        interaction_id = interaction_of(response)
        finish_interaction(db, interaction_id, login, **finish)
        if "auth_time" in finish:
            pass
        return query_of(complete(asgi_browser, interaction_id).headers["location"])

    base = authorization_params(rp, challenge)
    assert outcome(base, consent=False)["error"] == "access_denied"
    assert outcome(base, error="access_denied")["error"] == "access_denied"
    wants_substantial = authorization_params(rp, challenge, acr_values=assurance.SUBSTANTIAL)
    assert outcome(wants_substantial)["error"] == "login_required"

    # prompt=login: a login older than the request does not count.
    response = asgi_browser.get(
        "/authorize", params=authorization_params(rp, challenge, prompt="login")
    )
    interaction_id = interaction_of(response)
    finish_interaction(db, interaction_id, login)
    with db.session() as session:
        row = session.get(OidcInteraction, interaction_id)
        assert row is not None
        row.auth_time = datetime.now(UTC) - timedelta(minutes=5)
        session.add(row)
    answer = query_of(complete(asgi_browser, interaction_id).headers["location"])
    assert answer["error"] == "login_required"

    # An unfinished interaction cannot be completed; an unknown one is a page, not a redirect.
    response = asgi_browser.get("/authorize", params=base)
    pending = interaction_of(response)
    assert complete(asgi_browser, pending).status_code == 400
    assert complete(asgi_browser, "nope").status_code == 400


def test_rs256_client_gets_rs256_id_tokens_that_python_jose_verifies(
    hoviyat_app: FastAPI, asgi_browser: TestClient, citizen: Person
) -> None:
    from jose import jwt as jose_jwt
    from oidc_support import jwk_for

    rs = register_rp(hoviyat_app, "rp-rs256", alg="RS256")
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    params = authorization_params(rs, challenge)
    tokens = exchange(
        asgi_browser, rs, code_for(hoviyat_app, asgi_browser, params, login), verifier
    )
    id_token = tokens.json()["id_token"]
    jwks = asgi_browser.get("/jwks.json").json()
    claims = jose_jwt.decode(
        id_token, jwk_for(id_token, jwks), algorithms=["RS256"], audience=rs.client_id,
        access_token=tokens.json()["access_token"],
    )  # fmt: skip
    assert claims["nonce"] == params["nonce"]
    assert jose_jwt.get_unverified_header(id_token)["alg"] == "RS256"
