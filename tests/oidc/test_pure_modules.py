"""PKCE, pairwise subjects and claims release: pure functions, no server."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.oidc import claims as oidc_claims
from idp.oidc import rfc7636
from idp.oidc.pairwise import pairwise_salt, pairwise_subject, sector_of
from policies.service_policy import load_service_policies
from verifiers.registry.base import Person

PERSON = Person(
    national_code="0499370899",
    first_name="مریم",
    last_name="احمدی",
    father_name="علی",
    birth_date=date(1370 - 621, 8, 3),
    gender="female",
    alive=True,
    national_card_serial="1A23456789",
    postal_code="1234567890",
)
POLICIES = load_service_policies()
TAX = POLICIES["demo-tax-portal"]
BANK = POLICIES["demo-bank-kyc"]

UNRESERVED = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~",
    min_size=43,
    max_size=128,
)


def test_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert rfc7636.s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@given(UNRESERVED)
def test_only_the_matching_verifier_passes(verifier: str) -> None:
    challenge = rfc7636.s256(verifier)
    assert rfc7636.verify(verifier, challenge)
    assert not rfc7636.verify(verifier + "x", challenge)
    assert not rfc7636.verify(challenge, rfc7636.s256(challenge + "y"))


def test_plain_and_malformed_challenges_are_refused() -> None:
    challenge = rfc7636.s256("a" * 43)
    assert rfc7636.check_challenge(challenge, "S256") == challenge
    for method in (None, "plain", "s256", "S512"):
        with pytest.raises(rfc7636.PKCEError):
            rfc7636.check_challenge(challenge, method)
    for bad in (None, "", "short", challenge + "=", "*" * 43):
        with pytest.raises(rfc7636.PKCEError):
            rfc7636.check_challenge(bad, "S256")
    assert not rfc7636.verify("too-short", rfc7636.s256("too-short"))
    assert not rfc7636.verify(None, challenge)


def test_pairwise_subject_is_the_specified_hash_and_differs_by_sector() -> None:
    salt = pairwise_salt(b"\x01" * 32)
    sub = pairwise_subject("tax.example", "0499370899", salt)
    expected = hashlib.sha256(b"tax.example" + b"0499370899" + salt).digest()
    assert sub == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
    assert sub != pairwise_subject("bank.example", "0499370899", salt)
    assert sub != pairwise_subject("tax.example", "0499370899", pairwise_salt(b"\x02" * 32))
    assert "0499370899" not in sub


def test_sector_comes_from_the_registration() -> None:
    assert sector_of("https://tax.example/sector.json", [], "c") == "tax.example"
    assert sector_of(None, ["https://a.example/cb", "https://a.example/cb2"], "c") == "a.example"
    # Several hosts and no sector: the client stands alone.
    assert sector_of(None, ["https://a.example/cb", "https://b.example/cb"], "c") == "c"


def test_policy_decides_what_is_released_whatever_is_asked() -> None:
    asked = oidc_claims.requested_fields(["openid", "profile", "national_code", "phone"], {})
    assert oidc_claims.releasable_fields(asked, TAX) == {
        "first_name", "last_name", "father_name", "birth_date", "gender",
        "national_code", "phone_number",
    }  # fmt: skip
    # The bank's policy discloses names and birth date only: no national code.
    assert oidc_claims.releasable_fields(asked, BANK) == {"first_name", "last_name", "birth_date"}
    released = oidc_claims.person_claims(PERSON, oidc_claims.releasable_fields(asked, BANK))
    assert released == {
        "given_name": "مریم",
        "family_name": "احمدی",
        "name": "مریم احمدی",
        "birthdate": PERSON.birth_date.isoformat(),
    }


def test_consent_screen_lists_only_releasable_claims() -> None:
    request = {
        "userinfo": {"national_code": None, "verified_claims": {"claims": {"given_name": None}}}
    }
    # Asked through the claims parameter and allowed: listed; national code is not allowed.
    assert oidc_claims.consent_claims(["openid"], request, BANK) == [
        "given_name",
        "verified_claims",
    ]
    assert "national_code" not in oidc_claims.consent_claims(["openid", "profile"], request, BANK)
    assert oidc_claims.consent_claims(["openid", "legal_entity"], request, TAX) == [
        "given_name", "legal_entity", "national_code", "verified_claims",
    ]  # fmt: skip


def test_verified_claims_follow_oidc4ida() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    fields = {"first_name", "last_name", "birth_date"}
    verified = oidc_claims.verified_claims(PERSON, fields, ["given_name", "national_code"], when)
    assert verified is not None
    assert verified["claims"] == {"given_name": "مریم"}  # national_code not in fields
    verification = verified["verification"]
    assert verification["trust_framework"] == "ir_civil_registry"
    assert verification["time"] == "2026-01-02T03:04:05Z"
    (evidence,) = verification["evidence"]
    assert evidence["type"] == "electronic_record"
    assert "Civil Registration" in evidence["record"]["source"]["name"]
    assert oidc_claims.verified_claims(PERSON, set(), [], when) is None


def test_claims_parameter_must_be_a_json_object_of_objects() -> None:
    assert oidc_claims.parse_claims_request(None) == {}
    assert oidc_claims.parse_claims_request('{"other": 1, "userinfo": {"a": null}}') == {
        "userinfo": {"a": None}
    }
    for bad in ("[1]", "{", '{"userinfo": []}', '{"id_token": {"acr": 3}}'):
        with pytest.raises(oidc_claims.ClaimsRequestError):
            oidc_claims.parse_claims_request(bad)
    assert json.loads(json.dumps(oidc_claims.SUPPORTED_CLAIMS))


def test_stored_authorization_request_reads_back_and_refuses_incomplete_rows() -> None:
    from idp.oidc.authorize import AuthorizationRequest

    stored = {"redirect_uri": "https://a.example/cb", "scope": ["openid"], "claims": None,
              "code_challenge": "c" * 43, "code_challenge_method": "S256", "extra": 1}  # fmt: skip
    request = AuthorizationRequest.from_params(stored, "app")
    assert request.client_id == "app"
    assert request.claims == {}
    assert request.state is None
    assert AuthorizationRequest.from_params(request.to_params(), "app") == request
    with pytest.raises(ValueError, match="incomplete"):
        AuthorizationRequest.from_params({"scope": ["openid"]}, "app")
