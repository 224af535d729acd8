"""Verified claims and derived facts; an attestation of derived facts names nobody."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import date

import orjson
import pytest
from attest_helpers import CITIZEN, ENTITY, sign

from idp.attestations.claims import FactSelection, FactSelectionError, age_on
from idp.attestations.rfc9901 import SdJwt, b64url_decode

DERIVED_ONLY = FactSelection.of(
    ["alive", "representation"], age_over=[18, 65], entity_national_id=ENTITY.national_id
)


def _every_decoded_part(issued) -> str:
    """The JWT payloads, headers and every Disclosure of both forms, decoded to text."""
    texts = []
    for token in (issued.jwt, issued.sd_jwt):
        parsed = SdJwt.parse(token) if "~" in token else SdJwt(token, (), None)
        header, payload, _ = parsed.jwt.split(".")
        texts.append(b64url_decode(header).decode())
        texts.append(b64url_decode(payload).decode())
        texts.extend(b64url_decode(d).decode() for d in parsed.disclosures)
    return "\n".join(texts)


def test_derived_facts_disclose_no_birth_date_or_national_code(attestation_issuer, verifier):
    issued = sign(attestation_issuer, DERIVED_ONLY, entity=ENTITY)
    everything = _every_decoded_part(issued)
    assert CITIZEN.national_code not in everything
    # The birth date in every shape it could take: ISO, digits only, year alone next to month.
    for shape in ("1990-08-03", "19900803", "1990/08/03", "1369/05/12"):
        assert shape not in everything
    assert '"birthdate"' not in everything and '"national_code"' not in everything
    # Nor hidden in the raw compact strings (base64 of the number).
    raw = issued.jwt + issued.sd_jwt
    assert base64.b64encode(CITIZEN.national_code.encode()).decode()[:12] not in raw
    facts = dict(verifier.verify(issued.sd_jwt).facts)
    assert facts["age_over_18"] is True and facts["age_over_65"] is False
    assert facts["alive"] is True
    assert facts["representation"]["national_id"] == ENTITY.national_id
    assert facts["representation"]["role"] == "مدیرعامل"


def test_representation_discloses_entity_without_role(attestation_issuer, verifier):
    issued = sign(attestation_issuer, DERIVED_ONLY, entity=ENTITY)
    parsed = SdJwt.parse(issued.sd_jwt)
    only_entity = [
        d for d in parsed.disclosures if orjson.loads(b64url_decode(d))[1] == "representation"
    ]
    report = verifier.verify(SdJwt(parsed.jwt, tuple(only_entity), None).serialize())
    assert report.valid, report.render("en")
    representation = dict(report.facts)["representation"]
    assert representation == {"national_id": ENTITY.national_id, "name": "شرکت نمونه"}


def test_evidence_names_the_registry_it_came_from(attestation_issuer):
    issued = sign(attestation_issuer, DERIVED_ONLY, entity=ENTITY)
    civil, deeds = issued.claims["verified_claims"]
    assert civil["verification"]["evidence"][0]["record"]["type"] == "population_register"
    assert deeds["verification"]["evidence"][0]["record"]["type"] == "company_register"
    assert civil["verification"]["assurance_level"].endswith("/substantial")


def test_not_a_representative_is_refused(attestation_issuer):
    stranger = replace(ENTITY, representatives=())
    with pytest.raises(FactSelectionError, match="no current representative"):
        sign(attestation_issuer, DERIVED_ONLY, entity=stranger)


def test_dissolved_entity_is_refused(attestation_issuer):
    with pytest.raises(FactSelectionError, match="dissolved"):
        sign(attestation_issuer, DERIVED_ONLY, entity=replace(ENTITY, status="dissolved"))


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        (dict(facts=["shoe_size"]), "unknown facts"),
        (dict(facts=["alive"], age_over=[0]), "outside"),
        (dict(facts=["representation"]), "go together"),
        (dict(facts=[]), "at least one"),
    ],
)
def test_bad_selections_name_the_problem(facts, message):
    with pytest.raises(FactSelectionError, match=message):
        FactSelection.of(**facts)


def test_age_counts_completed_years_and_leap_days():
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18
    assert age_on(date(2000, 5, 1), date(2018, 5, 1)) == 18
