"""RFC 9901 §7: every verifier check, each with the attestation that must fail it."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from attest_helpers import ALL_PERSON_FACTS, CITIZEN, NOW, now_seconds, sign
from attest_pki import build_pki
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws
from joserfc.jwk import ECKey

from idp.attestations import rfc9901
from idp.attestations.issuer import AttestationIssuer
from idp.attestations.rfc9901 import KeyBindingPolicy, SdJwt, b64url, b64url_decode
from idp.attestations.signing import AttestationSigner
from idp.attestations.verifier import AttestationVerifier

AUDIENCE = "https://bank.example/verifier"
NONCE = "n-0S6_WzA2Mj"
KB = KeyBindingPolicy(required=True, audience=AUDIENCE, nonce=NONCE)


def disclosed_claims(report) -> dict:
    return dict(report.facts)


def fails(verifier: AttestationVerifier, token: str, check: str, **kwargs) -> None:
    report = verifier.verify(token, **kwargs)
    assert not report.valid
    assert report.failed_check == check, report.render("en")


def resign(signer: AttestationSigner, sd_jwt: str, change) -> str:
    """A malicious or buggy issuer: the payload altered, then properly signed."""
    parsed = SdJwt.parse(sd_jwt)
    header = rfc9901.unverified_header(parsed.jwt)
    payload = orjson.loads(b64url_decode(parsed.jwt.split(".")[1]))
    change(payload)
    jwt = jws.serialize_compact(header, orjson.dumps(payload), signer.jwk)
    return SdJwt(jwt, parsed.disclosures, parsed.kb_jwt).serialize()


def test_valid_sd_jwt_discloses_every_fact(attestation_issuer, verifier):
    issued = sign(attestation_issuer)
    report = verifier.verify(issued.sd_jwt)
    assert report.valid, report.render("en")
    facts = disclosed_claims(report)
    assert facts["national_code"] == CITIZEN.national_code
    assert facts["birthdate"] == "1990-08-03"
    assert report.claims["verified_claims"][0]["verification"]["evidence"][0]["type"] == (
        "electronic_record"
    )
    assert "_sd" not in orjson.dumps(report.claims).decode()


def test_holder_presents_a_subset(attestation_issuer, verifier):
    issued = sign(attestation_issuer)
    presentation = SdJwt.parse(issued.sd_jwt).select(["given_name", "alive"]).serialize()
    report = verifier.verify(presentation)
    assert report.valid, report.render("en")
    assert disclosed_claims(report) == {"given_name": "زهرا", "alive": True}


def test_forged_disclosure_is_rejected(attestation_issuer, verifier):
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    forged = []
    for disclosure in issued.disclosures:
        salt, name, _value = orjson.loads(b64url_decode(disclosure))
        if name == "birthdate":
            disclosure = b64url(orjson.dumps([salt, name, "1970-01-01"]))
        forged.append(disclosure)
    fails(verifier, SdJwt(issued.jwt, tuple(forged), None).serialize(), "disclosure_unreferenced")


def test_duplicated_disclosure_is_rejected(attestation_issuer, verifier):
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    doubled = (*issued.disclosures, issued.disclosures[0])
    fails(verifier, SdJwt(issued.jwt, doubled, None).serialize(), "disclosure_duplicate")


def test_disclosure_not_referenced_by_any_digest_is_rejected(attestation_issuer, verifier):
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    stranger = b64url(orjson.dumps(["c2FsdHNhbHRzYWx0", "given_name", "مریم"]))
    extra = (*issued.disclosures, stranger)
    fails(verifier, SdJwt(issued.jwt, extra, None).serialize(), "disclosure_unreferenced")


def test_digest_appearing_twice_is_rejected(attestation_issuer, signer, verifier):
    def duplicate(payload):
        claims = payload["verified_claims"][0]["claims"]
        claims["_sd"].append(claims["_sd"][0])

    fails(verifier, resign(signer, sign(attestation_issuer).sd_jwt, duplicate), "digest_duplicate")


def test_wrong_sd_alg_is_rejected(attestation_issuer, signer, verifier):
    def sha512(payload):
        payload["_sd_alg"] = "sha-512"

    fails(verifier, resign(signer, sign(attestation_issuer).sd_jwt, sha512), "sd_alg_unsupported")


def test_disclosed_name_clashing_with_plain_claim_is_rejected(attestation_issuer, signer, verifier):
    def clash(payload):
        payload["verified_claims"][0]["claims"]["given_name"] = "plain"

    fails(verifier, resign(signer, sign(attestation_issuer).sd_jwt, clash), "claim_name_duplicate")


def test_disclosure_naming_a_reserved_claim_is_rejected(attestation_issuer, signer, verifier):
    reserved = b64url(orjson.dumps(["c2FsdA", "_sd", ["x"]]))

    def add(payload):
        payload["verified_claims"][0]["claims"]["_sd"].append(rfc9901.digest(reserved))

    token = SdJwt.parse(resign(signer, sign(attestation_issuer).sd_jwt, add))
    tampered = SdJwt(token.jwt, (*token.disclosures, reserved), None)
    fails(verifier, tampered.serialize(), "claim_name_reserved")


def test_expired_attestation_is_rejected(attestation_issuer, verifier):
    issued = sign(attestation_issuer, issued_at=NOW - timedelta(days=31))
    fails(verifier, issued.sd_jwt, "expired")
    fails(verifier, issued.jwt, "expired")


def test_attestation_not_yet_valid_is_rejected(attestation_issuer, verifier):
    issued = sign(attestation_issuer, issued_at=NOW + timedelta(hours=1))
    fails(verifier, issued.sd_jwt, "not_yet_valid")


def test_tampered_payload_is_rejected(attestation_issuer, verifier):
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    header, payload, signature = issued.jwt.split(".")
    claims = orjson.loads(b64url_decode(payload))
    claims["purpose"] = "something else"
    jwt = ".".join([header, b64url(orjson.dumps(claims)), signature])
    fails(verifier, SdJwt(jwt, issued.disclosures, None).serialize(), "issuer_signature")


def test_unsigned_alg_none_is_rejected(attestation_issuer, verifier):
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    header = rfc9901.unverified_header(issued.jwt)
    header["alg"] = "none"
    jwt = ".".join([b64url(orjson.dumps(header)), issued.jwt.split(".")[1], ""])
    fails(verifier, SdJwt(jwt, issued.disclosures, None).serialize(), "alg_not_allowed")


def test_chain_not_reaching_the_root_is_rejected(attestation_issuer):
    other_root = build_pki().root
    fails(AttestationVerifier([other_root]), sign(attestation_issuer).sd_jwt, "chain_untrusted")
    fails(AttestationVerifier([other_root]), sign(attestation_issuer).jwt, "chain_untrusted")


def test_chain_without_the_issuing_ca_is_rejected(pki, verifier):
    leaf_only = AttestationSigner(pki.leaf_key, (pki.leaf,))
    fails(verifier, sign(AttestationIssuer(leaf_only, "https://x")).sd_jwt, "chain_untrusted")


def test_signer_certificate_out_of_validity_is_rejected():
    stale = build_pki(
        leaf_not_before=NOW - timedelta(days=10), leaf_not_after=NOW - timedelta(days=1)
    )
    issuer = AttestationIssuer(AttestationSigner(stale.leaf_key, (stale.leaf, stale.issuing)), "x")
    fails(AttestationVerifier([stale.root]), sign(issuer).sd_jwt, "certificate_expired")


def test_wrong_typ_is_rejected(attestation_issuer, signer, verifier):
    issued = sign(attestation_issuer)
    # The JWT form presented where an SD-JWT is expected (explicit typing, RFC 9901 §9.11).
    fails(verifier, issued.jwt + "~", "typ")


# --- Key Binding (§7.3) -------------------------------------------------------------


def bound(issuer, holder_key: ECKey, *, aud=AUDIENCE, nonce=NONCE, iat=None, claims=("alive",)):
    issued = sign(issuer, holder=holder_key)
    presentation = SdJwt.parse(issued.sd_jwt).select(claims)
    return presentation.bind(holder_key, audience=aud, nonce=nonce, issued_at=iat or now_seconds())


def test_key_binding_verifies(attestation_issuer, verifier, holder_key):
    report = verifier.verify(bound(attestation_issuer, holder_key).serialize(), key_binding=KB)
    assert report.valid, report.render("en")
    assert disclosed_claims(report) == {"alive": True}


def test_key_binding_missing_where_required_is_rejected(attestation_issuer, verifier, holder_key):
    issued = sign(attestation_issuer, holder=holder_key)
    fails(verifier, issued.sd_jwt, "kb_missing", key_binding=KB)


def test_key_binding_wrong_audience_is_rejected(attestation_issuer, verifier, holder_key):
    token = bound(attestation_issuer, holder_key, aud="https://elsewhere.example").serialize()
    fails(verifier, token, "kb_aud", key_binding=KB)


def test_key_binding_wrong_nonce_is_rejected(attestation_issuer, verifier, holder_key):
    token = bound(attestation_issuer, holder_key, nonce="replayed").serialize()
    fails(verifier, token, "kb_nonce", key_binding=KB)


def test_key_binding_stale_iat_is_rejected(attestation_issuer, verifier, holder_key):
    token = bound(attestation_issuer, holder_key, iat=now_seconds() - 3600).serialize()
    fails(verifier, token, "kb_iat", key_binding=KB)


def test_key_binding_by_another_key_is_rejected(attestation_issuer, verifier, holder_key):
    thief = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    issued = SdJwt.parse(sign(attestation_issuer, holder=holder_key).sd_jwt)
    stolen = issued.bind(thief, audience=AUDIENCE, nonce=NONCE, issued_at=now_seconds())
    fails(verifier, stolen.serialize(), "kb_signature", key_binding=KB)


def test_key_binding_over_other_disclosures_is_rejected(attestation_issuer, verifier, holder_key):
    issued = SdJwt.parse(sign(attestation_issuer, holder=holder_key).sd_jwt)
    signed_for = issued.select(["alive"]).bind(
        holder_key, audience=AUDIENCE, nonce=NONCE, issued_at=now_seconds()
    )
    # More disclosures than the holder signed for: sd_hash no longer covers them.
    widened = issued.select(["alive", "given_name"])
    swapped = SdJwt(signed_for.jwt, widened.disclosures, signed_for.kb_jwt)
    fails(verifier, swapped.serialize(), "kb_sd_hash", key_binding=KB)


def test_key_binding_with_wrong_typ_is_rejected(attestation_issuer, verifier, holder_key):
    presented = SdJwt.parse(sign(attestation_issuer, holder=holder_key).sd_jwt).select(["alive"])
    payload = {
        "iat": now_seconds(),
        "aud": AUDIENCE,
        "nonce": NONCE,
        "sd_hash": rfc9901.digest(presented.presented),
    }
    kb = jws.serialize_compact({"alg": "ES256", "typ": "JWT"}, orjson.dumps(payload), holder_key)
    token = SdJwt(presented.jwt, presented.disclosures, kb).serialize()
    fails(verifier, token, "kb_typ", key_binding=KB)


def test_key_binding_without_holder_key_in_attestation_is_rejected(
    attestation_issuer, verifier, holder_key
):
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)  # no cnf
    token = issued.bind(holder_key, audience=AUDIENCE, nonce=NONCE, issued_at=now_seconds())
    fails(verifier, token.serialize(), "kb_no_holder_key", key_binding=KB)


def test_required_key_binding_needs_audience_and_nonce(attestation_issuer, verifier):
    with pytest.raises(ValueError, match="audience and nonce"):
        verifier.verify(
            sign(attestation_issuer).sd_jwt, key_binding=KeyBindingPolicy(required=True)
        )


def test_jwt_form_verifies_with_all_facts(attestation_issuer, verifier):
    report = verifier.verify(sign(attestation_issuer, ALL_PERSON_FACTS).jwt)
    assert report.valid and report.format == "jwt"
    assert disclosed_claims(report)["family_name"] == "رضایی"


def test_report_says_key_binding_was_not_checked_when_absent(
    attestation_issuer, verifier, holder_key
):
    plain = verifier.verify(sign(attestation_issuer).sd_jwt)
    assert {c.stage: c.outcome for c in plain.checks}["key_binding"] == "skipped"
    assert not plain.key_bound
    bound_report = verifier.verify(
        bound(attestation_issuer, holder_key).serialize(), key_binding=KB
    )
    assert {c.stage: c.outcome for c in bound_report.checks}["key_binding"] == "passed"
    assert bound_report.key_bound


def test_persian_report_gives_jalali_dates(attestation_issuer, verifier):
    from verifiers.dates import to_jalali

    report = verifier.verify(sign(attestation_issuer).jwt)
    assert to_jalali(NOW.date()) in report.render("fa")
    assert to_jalali(NOW.date()) not in report.render("en")
