"""Attacks on attestation checking, from the side of whoever hands the receiver a token.

The report is what a receiver reads: besides refusing the token, it must not
claim a check passed that never ran, and must say what the status check found.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import orjson
import pytest
from attest_helpers import NOW, now_seconds, sign
from attest_pki import build_pki
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from idp.attestations import rfc9901, status_list
from idp.attestations.issuer import TYP_JWT, TYP_SD_JWT, status_list_uri
from idp.attestations.rfc9901 import KeyBindingPolicy, SdJwt, b64url, b64url_decode
from idp.attestations.status_list import StatusList, sign_status_list_token
from idp.attestations.verifier import AttestationVerifier, Report
from idp.attestations.x5c import encode_chain
from idp.cli.attest import attest_app

RECEIVER = "https://bank.example"
runner = CliRunner()


def outcomes(report: Report) -> dict[str, str]:
    return {check.stage: check.outcome for check in report.checks}


def token(header: dict, payload: dict, signature: str = "") -> str:
    return ".".join([b64url(orjson.dumps(header)), b64url(orjson.dumps(payload)), signature])


def parts(jwt: str) -> tuple[dict, dict]:
    header, payload, _ = jwt.split(".")
    return orjson.loads(b64url_decode(header)), orjson.loads(b64url_decode(payload))


def signed_by(key: ec.EllipticCurvePrivateKey, header: dict, payload: dict) -> str:
    return jws.serialize_compact(header, orjson.dumps(payload), ECKey.import_key(key))


# --- the report says only what ran ------------------------------------------------------


def test_attack_alg_none_without_x5c_is_not_reported_as_chained_to_the_root(
    attestation_issuer, verifier
) -> None:
    _, payload = parts(sign(attestation_issuer).jwt)
    forged = token({"alg": "none", "typ": TYP_JWT}, payload)
    report = verifier.verify(forged)
    assert not report.valid
    seen = outcomes(report)
    assert seen["chain"] == "failed" and report.failed_check == "chain_missing"
    assert seen["signature"] == "not_reached"
    assert [stage for stage, outcome in seen.items() if outcome == "passed"] == ["format"]
    assert "Certificate chain to the Hoviyat root: passed" not in report.render("en")


def test_attack_alg_none_sd_jwt_without_x5c_reports_nothing_past_the_format(
    attestation_issuer, verifier
) -> None:
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    _, payload = parts(issued.jwt)
    jwt = token({"alg": "none", "typ": TYP_SD_JWT}, payload)
    report = verifier.verify(SdJwt(jwt, issued.disclosures, None).serialize())
    assert not report.valid
    passed = [stage for stage, outcome in outcomes(report).items() if outcome == "passed"]
    assert passed == ["format"]


def test_attack_alg_none_with_the_genuine_x5c_fails_the_signature_after_the_chain(
    attestation_issuer, verifier
) -> None:
    header, payload = parts(sign(attestation_issuer).jwt)
    report = verifier.verify(token({**header, "alg": "none"}, payload))
    assert report.failed_check == "alg_not_allowed"
    seen = outcomes(report)
    assert seen["chain"] == "passed"  # it did run: the chain is genuine
    assert seen["signature"] == "failed"
    assert seen["validity"] == "not_reached" and seen["status"] == "skipped"


def test_attack_tampered_disclosure_report_stops_at_the_disclosures(
    attestation_issuer, verifier, holder_key
) -> None:
    issued = SdJwt.parse(sign(attestation_issuer, holder=holder_key).sd_jwt)
    salt, name, _ = orjson.loads(b64url_decode(issued.disclosures[0]))
    lie = b64url(orjson.dumps([salt, name, "forged value"]))
    bound = SdJwt(issued.jwt, (lie, *issued.disclosures[1:]), None).bind(
        holder_key, audience=RECEIVER, nonce="n", issued_at=now_seconds()
    )
    report = verifier.verify(bound.serialize())
    assert report.failed_check == "disclosure_unreferenced"
    seen = outcomes(report)
    assert seen["signature"] == "passed" and seen["disclosures"] == "failed"
    # the KB-JWT was presented but never checked; the required claims were not either
    assert seen["key_binding"] == "not_reached" and seen["validity"] == "not_reached"


def test_report_of_a_valid_attestation_passes_every_stage_that_ran(
    attestation_issuer, verifier
) -> None:
    report = verifier.verify(sign(attestation_issuer).sd_jwt)
    assert report.valid
    assert outcomes(report) == {
        "format": "passed",
        "chain": "passed",
        "signature": "passed",
        "validity": "passed",
        "disclosures": "passed",
        "key_binding": "skipped",
        "status": "skipped",
    }


# --- status ---------------------------------------------------------------------------


def _seeing(pki, signer, statuses: dict[int, int]) -> AttestationVerifier:
    uri = status_list_uri("https://hoviyat.test", 1)
    served = {
        uri: sign_status_list_token(
            signer, uri, StatusList.with_statuses(1024, statuses.items(), bits=2),
            now=now_seconds(), ttl=300,
        )
    }  # fmt: skip
    return AttestationVerifier([pki.root], status_fetcher=served.__getitem__)


@pytest.mark.parametrize(
    ("value", "status"), [(status_list.INVALID, "revoked"), (status_list.SUSPENDED, "suspended")]
)
def test_attack_revoked_attestation_report_says_revoked_not_not_checked(
    pki, signer, attestation_issuer, value: int, status: str
) -> None:
    issued = sign(attestation_issuer)  # status entry (list 1, index 7)
    report = _seeing(pki, signer, {7: value}).verify(issued.sd_jwt, check_status=True)
    summary = report.as_dict()
    assert summary["failed_check"] == status
    assert summary["status"] == status
    assert outcomes(report)["status"] == "failed"


def test_status_not_reached_is_not_checked(pki, signer, attestation_issuer) -> None:
    stale = sign(attestation_issuer, issued_at=NOW - timedelta(days=40)).jwt
    report = _seeing(pki, signer, {7: status_list.INVALID}).verify(stale, check_status=True)
    assert report.failed_check == "expired"
    assert report.status == "not_checked" and outcomes(report)["status"] == "not_reached"


# --- audience (RFC 7519 §4.1.3) -----------------------------------------------------------


def test_attack_attestation_for_a_named_receiver_is_refused_when_no_audience_is_named(
    attestation_issuer, verifier
) -> None:
    issued = sign(attestation_issuer, recipient=RECEIVER)
    for form in (issued.jwt, issued.sd_jwt):
        report = verifier.verify(form)
        assert not report.valid and report.failed_check == "audience"
        assert outcomes(report)["validity"] == "failed"
        assert verifier.verify(form, audience=RECEIVER).valid
        assert verifier.verify(form, audience="https://shop.example").failed_check == "audience"


def test_attack_attestation_for_a_named_receiver_fails_the_cli_without_audience(
    attestation_issuer, pki, tmp_path
) -> None:
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    jwt = sign(attestation_issuer, recipient=RECEIVER).jwt
    result = runner.invoke(attest_app, ["verify", jwt, "--root", str(root), "--json"])
    assert result.exit_code == 1 and '"failed_check": "audience"' in result.output


def test_aud_as_a_list_verifies_for_each_named_receiver(signer, verifier, attestation_issuer):
    header, payload = parts(sign(attestation_issuer).jwt)
    payload["aud"] = [RECEIVER, "https://shop.example"]
    jwt = jws.serialize_compact(header, orjson.dumps(payload), signer.jwk)
    assert verifier.verify(jwt, audience="https://shop.example").valid
    assert verifier.verify(jwt).failed_check == "audience"
    assert verifier.verify(jwt, audience="https://other.example").failed_check == "audience"


def test_holder_checking_their_own_attestation_may_waive_the_audience(
    attestation_issuer, verifier
) -> None:
    issued = sign(attestation_issuer, recipient=RECEIVER)
    assert verifier.verify(issued.sd_jwt, any_audience=True).valid


# --- key substitution in x5c --------------------------------------------------------------


def _self_signed(key: ec.EllipticCurvePrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


def test_attack_attacker_key_in_x5c_under_a_copied_issuer_name_is_untrusted(
    attestation_issuer, pki, verifier
) -> None:
    header, payload = parts(sign(attestation_issuer).jwt)
    attacker = ec.generate_private_key(ec.SECP256R1())
    fake_leaf = _self_signed(attacker, pki.leaf.subject.rfc4514_string())
    header["x5c"] = encode_chain([fake_leaf, pki.issuing])
    report = verifier.verify(signed_by(attacker, header, payload))
    assert report.failed_check == "chain_untrusted"
    assert outcomes(report)["signature"] == "not_reached"


def test_attack_genuine_x5c_with_an_attacker_signature_fails_the_signature(
    attestation_issuer, verifier
) -> None:
    header, payload = parts(sign(attestation_issuer).jwt)
    payload["purpose"] = "anything the attacker likes"
    forged = signed_by(ec.generate_private_key(ec.SECP256R1()), header, payload)
    report = verifier.verify(forged)
    assert report.failed_check == "issuer_signature"
    assert outcomes(report)["chain"] == "passed" and outcomes(report)["signature"] == "failed"


def test_attack_signer_from_another_pki_with_our_intermediate_appended_is_untrusted(
    attestation_issuer, pki, verifier
) -> None:
    intruder = build_pki()
    header, payload = parts(sign(attestation_issuer).jwt)
    header["x5c"] = encode_chain([intruder.leaf, pki.issuing])
    report = verifier.verify(signed_by(intruder.leaf_key, header, payload))
    assert report.failed_check == "chain_untrusted"


def test_attack_ca_certificate_presented_as_the_signer_is_refused(
    attestation_issuer, pki, verifier
) -> None:
    """With the issuing CA's key (a stolen CA key, say) the signer must still be an end entity."""
    header, payload = parts(sign(attestation_issuer).jwt)
    header["x5c"] = encode_chain([pki.issuing])
    report = verifier.verify(signed_by(pki.issuing_key, header, payload))
    assert not report.valid and report.failed_check in {"leaf_usage", "chain_untrusted"}


def test_attack_x5c_that_is_not_base64_der_is_malformed(attestation_issuer, verifier) -> None:
    header, payload = parts(sign(attestation_issuer).jwt)
    for x5c in (["%%%"], [base64.b64encode(b"not a certificate").decode()], "MIIB", [1]):
        report = verifier.verify(token({**header, "x5c": x5c}, payload, "sig"))
        assert report.failed_check in {"chain_malformed", "chain_missing"}, x5c


# --- SD-JWT disclosure tampering -----------------------------------------------------------


def test_attack_disclosure_from_another_attestation_is_unreferenced(
    attestation_issuer, verifier
) -> None:
    mine = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    theirs = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    planted = SdJwt(mine.jwt, (*mine.disclosures[:-1], theirs.disclosures[-1]), None)
    assert verifier.verify(planted.serialize()).failed_check == "disclosure_unreferenced"


def test_attack_disclosure_added_after_key_binding_breaks_sd_hash(
    attestation_issuer, verifier, holder_key
) -> None:
    issued = SdJwt.parse(sign(attestation_issuer, holder=holder_key).sd_jwt)
    subset = issued.select(["alive"])
    bound = subset.bind(holder_key, audience=RECEIVER, nonce="n", issued_at=now_seconds())
    extra = next(d for d in issued.disclosures if d not in subset.disclosures)
    widened = SdJwt(bound.jwt, (*bound.disclosures, extra), bound.kb_jwt)
    policy = KeyBindingPolicy(required=True, audience=RECEIVER, nonce="n")
    report = verifier.verify(widened.serialize(), key_binding=policy)
    assert report.failed_check == "kb_sd_hash"
    assert outcomes(report)["disclosures"] == "passed"
    assert outcomes(report)["key_binding"] == "failed"


def test_attack_array_disclosure_in_place_of_an_object_one_is_malformed(
    attestation_issuer, signer, verifier
) -> None:
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    header, payload = parts(issued.jwt)
    element = b64url(orjson.dumps(["salt", "value"]))
    payload["_sd"] = [*payload.get("_sd", []), rfc9901.digest(element)]
    jwt = jws.serialize_compact(header, orjson.dumps(payload), signer.jwk)
    report = verifier.verify(SdJwt(jwt, (*issued.disclosures, element), None).serialize())
    assert report.failed_check == "disclosure_malformed"


# --- fuzzing the JWS, JWT and SD-JWT parsers ----------------------------------------------

OUTCOMES = {"passed", "failed", "skipped", "not_reached"}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
b64_segments = st.one_of(
    st.binary(max_size=40).map(b64url),
    json_values.map(lambda v: b64url(orjson.dumps(v))),
    st.text(alphabet="AZaz09-_=+/.~ ", max_size=30),
)


def assert_consistent(report: Report) -> None:
    """A verdict a receiver can rely on: one failure at most, only known words."""
    stages = [check.stage for check in report.checks]
    assert len(stages) == len(set(stages))
    assert {check.outcome for check in report.checks} <= OUTCOMES
    failed = [check.stage for check in report.checks if check.outcome == "failed"]
    if report.valid:
        assert not failed and report.failed_check is None
    else:
        assert report.failed_check and len(failed) == 1
    report.as_dict()
    report.render("fa")
    report.render("en")


@st.composite
def structured_tokens(draw: st.DrawFn, genuine: list[str]) -> str:
    header = draw(st.dictionaries(st.sampled_from(["kid", "cty", "crit", "jku"]), json_values))
    alg = draw(st.sampled_from(["ES256", "none", "HS256", "RS256", "EdDSA", None]))
    if alg is not None:
        header["alg"] = alg
    header["typ"] = draw(st.sampled_from([TYP_JWT, TYP_SD_JWT, "JWT", "kb+jwt", None]))
    header["x5c"] = draw(st.sampled_from([genuine, genuine[:1], [], None, ["AAAA"], genuine[::-1]]))
    payload = draw(st.dictionaries(st.sampled_from(
        ["iss", "iat", "exp", "nbf", "jti", "aud", "_sd", "_sd_alg", "cnf", "verified_claims",
         "status"]), json_values) | json_values)  # fmt: skip
    jwt = ".".join(
        [b64url(orjson.dumps(header)), b64url(orjson.dumps(payload)), draw(b64_segments)]
    )
    if draw(st.booleans()):
        return jwt
    disclosures = draw(st.lists(b64_segments, max_size=3))
    kb = draw(
        st.sampled_from(["", jwt, "a.b.c"])
        | st.lists(b64_segments, min_size=3, max_size=3).map(".".join)
    )
    return "~".join([jwt, *disclosures, kb])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_structured_jws_jwt_and_sd_jwt_get_a_consistent_verdict(
    attestation_issuer, verifier, data: st.DataObject
) -> None:
    genuine = parts(sign(attestation_issuer).jwt)[0]["x5c"]
    text = data.draw(structured_tokens(genuine))
    policy = data.draw(
        st.sampled_from(
            [KeyBindingPolicy(), KeyBindingPolicy(required=True, audience="a", nonce="n")]
        )
    )
    report = verifier.verify(
        text, key_binding=policy, check_status=data.draw(st.booleans()), audience=RECEIVER
    )
    assert not report.valid  # nothing here is signed by the issuer
    assert_consistent(report)


def _decoded(text: str) -> tuple[bytes, ...] | None:
    """The bytes a token's parts decode to; None when a part does not decode."""
    try:
        pieces = text.strip().split("~")
        jwt = pieces[0].split(".")
        return (*(b64url_decode(p) for p in jwt), *(p.encode() for p in pieces[1:]))
    except (ValueError, UnicodeEncodeError):
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutated_real_attestation_is_refused_unless_its_bytes_are_unchanged(
    attestation_issuer, verifier, holder_key, data: st.DataObject
) -> None:
    issued = sign(attestation_issuer, holder=holder_key)
    original = data.draw(
        st.sampled_from(
            [
                issued.jwt,
                issued.sd_jwt,
                SdJwt.parse(issued.sd_jwt)
                .bind(holder_key, audience="a", nonce="n", issued_at=now_seconds())
                .serialize(),
            ]
        )
    )
    text = original
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        char = data.draw(st.sampled_from("AQgw_-.~=+/ é\x00") | st.characters())
        if action == "replace" and position < len(text):
            text = text[:position] + char + text[position + 1 :]
        elif action == "insert":
            text = text[:position] + char + text[position:]
        else:
            text = text[:position] + text[position + 1 :]
    report = verifier.verify(text, audience=RECEIVER)
    assert_consistent(report)
    if report.valid:
        # Only an encoding that decodes to the very same bytes (base64 padding bits) may pass.
        assert _decoded(text) == _decoded(original), (original, text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | st.text(alphabet="AZaz09-_.~=", max_size=200))
def test_fuzz_rfc9901_parsers_only_raise_attestation_invalid(text: str) -> None:
    from idp.attestations.errors import AttestationInvalid
    from idp.attestations.x5c import decode_chain

    for parse in (
        SdJwt.parse,
        rfc9901.unverified_header,
        rfc9901._decode_disclosure,
        lambda t: decode_chain([t]),
        lambda t: rfc9901.verify(t, lambda h, p: pytest.fail("no key for a random token"), now=0),
    ):
        try:
            parse(text)
        except AttestationInvalid as failure:
            assert failure.check


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_fuzz_cli_answers_any_file_with_a_verdict_or_a_refusal(pki, tmp_path_factory, data) -> None:
    folder = tmp_path_factory.mktemp("cli")
    root, attestation = folder / "root.pem", folder / "attestation"
    root.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    attestation.write_bytes(data)
    result = runner.invoke(attest_app, ["verify", str(attestation), "--root", str(root), "--json"])
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def test_attack_binary_stdin_or_unreadable_file_is_a_one_line_refusal(pki, tmp_path) -> None:
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    binary = runner.invoke(attest_app, ["verify", "-", "--root", str(root)], input=b"\xff\xfe")
    assert binary.exit_code == 2, binary.output
    assert isinstance(binary.exception, SystemExit | None)
    unreadable = tmp_path / "attestation"
    unreadable.write_text("a.b.c")
    unreadable.chmod(0)
    result = runner.invoke(attest_app, ["verify", str(unreadable), "--root", str(root)])
    if result.exit_code == 1:
        pytest.skip("running as a user who reads any file (root)")
    assert result.exit_code == 2 and "cannot read" in result.stderr


def test_attack_clerk_of_another_receiver_cannot_check_an_attestation_named_for_a_bank(
    ca_ready, app_client, representative
) -> None:
    from test_attest_pages import csrf_of, log_in

    person, _ = representative
    log_in(ca_ready, app_client, person.national_code)
    form = app_client.get("/attestations")
    issued = app_client.post(
        "/attestations/new",
        data={
            "csrf_token": csrf_of(form.text),
            "lang": "en",
            "purpose": "opening an account",
            "facts": ["alive"],
            "recipient": RECEIVER,
        },
    )
    assert issued.status_code == 200, issued.text
    code = _group(r'id="code" dir="ltr">([A-Z0-9-]+)<', issued.text)
    anyone = app_client.get("/attestations/check", params={"code": code, "lang": "en"})
    assert 'data-valid="false"' in anyone.text
    assert 'data-stage="validity" data-outcome="failed"' in anyone.text
    other = app_client.post(
        "/attestations/check", data={"code": code, "audience": "https://shop.example"}
    )
    assert 'data-valid="false"' in other.text
    bank = app_client.post("/attestations/check", data={"code": code, "audience": RECEIVER})
    assert 'data-valid="true"' in bank.text, bank.text


def test_attack_documented_recipes_refuse_a_token_for_a_named_receiver_without_audience(
    pki, attestation_issuer, tmp_path
) -> None:
    from node_support import node_with
    from test_attest_interop import NODE_DIR, _node_verify, _recipe

    namespace: dict = {}
    exec(compile(_recipe("python"), "RECEIVERS.md", "exec"), namespace)
    root_pem = pki.root.public_bytes(serialization.Encoding.PEM)
    issued = sign(attestation_issuer, recipient=RECEIVER)
    with pytest.raises(Exception, match="audience"):
        namespace["verify_attestation"](issued.jwt, root_pem)
    node = node_with(NODE_DIR, "jose")
    root_path = tmp_path / "root.pem"
    root_path.write_bytes(root_pem)
    refused = _node_verify(node, root_path, issued.jwt)
    assert refused.returncode != 0 and "audience" in refused.stderr
    assert _node_verify(node, root_path, issued.jwt, RECEIVER).returncode == 0


def test_attack_time_claim_that_is_not_a_number_is_blamed_on_validity(
    attestation_issuer, signer, verifier
) -> None:
    """A malicious or buggy issuer: the failure lands on the stage that found it."""
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    header, payload = parts(issued.jwt)
    payload["exp"] = "tomorrow"
    jwt = jws.serialize_compact(header, orjson.dumps(payload), signer.jwk)
    report = verifier.verify(SdJwt(jwt, issued.disclosures, None).serialize())
    assert report.failed_check == "time_claim_malformed"
    seen = outcomes(report)
    assert seen["signature"] == "passed" and seen["validity"] == "failed"
    assert seen["disclosures"] == "not_reached"


def test_attack_expired_key_binding_is_blamed_on_key_binding(
    attestation_issuer, verifier, holder_key
) -> None:
    issued = SdJwt.parse(sign(attestation_issuer, holder=holder_key).sd_jwt)
    presented = issued.select(["alive"])
    payload = {
        "iat": now_seconds(),
        "exp": now_seconds() - 3600,
        "aud": RECEIVER,
        "nonce": "n",
        "sd_hash": rfc9901.digest(presented.presented),
    }
    kb = jws.serialize_compact(
        {"alg": "ES256", "typ": "kb+jwt"}, orjson.dumps(payload), holder_key, algorithms=["ES256"]
    )
    policy = KeyBindingPolicy(required=True, audience=RECEIVER, nonce="n")
    report = verifier.verify(
        SdJwt(presented.jwt, presented.disclosures, kb).serialize(), key_binding=policy
    )
    assert report.failed_check == "kb_expired"
    assert outcomes(report)["key_binding"] == "failed"
    assert outcomes(report)["validity"] == "not_reached"


def _group(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s first match in ``text`` (which must have one)."""
    found = re.search(pattern, text)
    assert found is not None, pattern
    return found.group(1)
