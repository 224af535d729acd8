"""Independent implementations accept what Hoviyat issues: sd-jwt (PyPI), python-jose, Node jose."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from attest_helpers import ALL_PERSON_FACTS, CITIZEN, ENTITY, now_seconds, sign
from attest_pki import build_pki
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import VerificationError
from jose import jwt as jose_jwt
from jwcrypto.jwk import JWK
from jwcrypto.jws import InvalidJWSSignature
from node_support import node_with
from sd_jwt.verifier import SDJWTVerifier

import idp.attestations
from idp.attestations.claims import FactSelection
from idp.attestations.rfc9901 import SdJwt

NODE_DIR = Path(__file__).parent / "node"
RECEIVERS = Path(idp.attestations.__file__).parent / "RECEIVERS.md"


def _recipe(language: str) -> str:
    """The one code block of ``language`` in RECEIVERS.md (the documented recipe)."""
    blocks = re.findall(rf"```{language}\n(.*?)```", RECEIVERS.read_text(), flags=re.S)
    assert len(blocks) == 1, f"RECEIVERS.md should hold one {language} recipe"
    return blocks[0]


AUDIENCE = "https://bank.example"


def _leaf_pem(pki) -> str:
    return (
        pki.leaf.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_sd_jwt_package_verifies_a_key_bound_presentation(pki, attestation_issuer, holder_key):
    issued = sign(attestation_issuer, holder=holder_key)
    presentation = (
        SdJwt.parse(issued.sd_jwt)
        .select(["given_name", "alive"])
        .bind(holder_key, audience=AUDIENCE, nonce="abc123", issued_at=now_seconds())
    )
    leaf_key = JWK.from_pem(_leaf_pem(pki).encode())
    verifier = SDJWTVerifier(
        presentation.serialize(),
        lambda issuer, header: leaf_key,
        expected_aud=AUDIENCE,
        expected_nonce="abc123",
    )
    payload = verifier.get_verified_payload()
    assert payload["verified_claims"][0]["claims"] == {"given_name": "زهرا", "alive": True}
    assert payload["iss"] == "https://hoviyat.test"


def test_sd_jwt_package_rejects_a_forged_signature(pki, attestation_issuer):
    other = build_pki()
    wrong_key = JWK.from_pem(_leaf_pem(other).encode())
    with pytest.raises(InvalidJWSSignature):
        SDJWTVerifier(sign(attestation_issuer).sd_jwt, lambda issuer, header: wrong_key)


def test_python_jose_decodes_the_jwt_form(pki, attestation_issuer):
    issued = sign(attestation_issuer, ALL_PERSON_FACTS, recipient=AUDIENCE)
    claims = jose_jwt.decode(issued.jwt, _leaf_pem(pki), algorithms=["ES256"], audience=AUDIENCE)
    assert claims["verified_claims"][0]["claims"]["national_code"] == CITIZEN.national_code
    assert jose_jwt.get_unverified_header(issued.jwt)["typ"] == "hoviyat-attestation+jwt"
    with pytest.raises(jose_jwt.JWTError):
        jose_jwt.decode(issued.jwt, _leaf_pem(pki), algorithms=["ES256"], audience="other")


def _node_verify(node: str, root_pem: Path, token: str, audience: str | None = None):
    args = [node, str(NODE_DIR / "verify.mjs"), str(root_pem)] + ([audience] if audience else [])
    return subprocess.run(args, input=token, capture_output=True, text=True, timeout=30)


def test_node_jose_verifies_the_jwt_form_against_the_root(pki, attestation_issuer, tmp_path):
    node = node_with(NODE_DIR, "jose")
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    issued = sign(attestation_issuer, recipient=AUDIENCE)
    done = _node_verify(node, root_pem, issued.jwt, AUDIENCE)
    assert done.returncode == 0, done.stderr
    claims = json.loads(done.stdout)
    assert claims["jti"] == issued.id
    assert claims["verified_claims"][0]["claims"]["given_name"] == "زهرا"


def test_node_recipe_rejects_a_foreign_root(attestation_issuer, tmp_path):
    node = node_with(NODE_DIR, "jose")
    root_pem = tmp_path / "other-root.pem"
    root_pem.write_bytes(build_pki().root.public_bytes(serialization.Encoding.PEM))
    done = _node_verify(node, root_pem, sign(attestation_issuer).jwt)
    assert done.returncode != 0
    assert "not signed by" in done.stderr


def test_documented_python_recipe_accepts_ours_and_refuses_others(pki, attestation_issuer):
    namespace: dict = {}
    exec(compile(_recipe("python"), str(RECEIVERS), "exec"), namespace)
    verify_attestation = namespace["verify_attestation"]
    root_pem = pki.root.public_bytes(serialization.Encoding.PEM)
    issued = sign(attestation_issuer, recipient=AUDIENCE)
    claims = verify_attestation(issued.jwt, root_pem, audience=AUDIENCE)
    assert claims["txn"] == issued.tracking_code
    foreign_root = build_pki().root.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(VerificationError):
        verify_attestation(issued.jwt, foreign_root, audience=AUDIENCE)


def test_documented_node_recipe_is_the_one_the_tests_run():
    assert _recipe("js") == (NODE_DIR / "verify.mjs").read_text()


def test_sd_jwt_package_reads_nested_disclosures(pki, attestation_issuer):
    selection = FactSelection.of(
        ["alive", "representation"], age_over=[18], entity_national_id=ENTITY.national_id
    )
    issued = sign(attestation_issuer, selection, entity=ENTITY)
    leaf_key = JWK.from_pem(_leaf_pem(pki).encode())
    payload = SDJWTVerifier(issued.sd_jwt, lambda issuer, header: leaf_key).get_verified_payload()
    civil, deeds = payload["verified_claims"]
    assert civil["claims"] == {"alive": True, "age_over_18": True}
    assert deeds["claims"]["representation"] == {
        "national_id": ENTITY.national_id,
        "name": ENTITY.name,
        "role": "مدیرعامل",
        "signing_authority": "امضای منفرد",
    }
