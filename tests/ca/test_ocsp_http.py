"""Revocation, CRLs and OCSP through the app: ASGI for the API, uvicorn on loopback for openssl."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_helpers import issue_leaf, lint, make_pki, pem, run

from ca.keys import open_keystore
from ca.settings import CASettings
from idp.pki.hierarchy import Hierarchy
from idp.settings import Settings
from idp.storage.engine import Database


@pytest.fixture
def hierarchy(hoviyat_settings: Settings, init_report: dict[str, Any]) -> Iterator[Hierarchy]:
    """The CA of the app's data directory, as 'hoviyat ca init' makes it (file keys)."""
    ca_dir = hoviyat_settings.data_dir / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    passphrase = ca_dir / "passphrase"
    passphrase.write_text("test passphrase\n")
    os.chmod(passphrase, 0o600)
    db = Database(hoviyat_settings.resolved_database_url)
    keys = open_keystore(CASettings(key_backend="file"), hoviyat_settings.data_dir)
    hierarchy = Hierarchy(db, keys, hoviyat_settings.issuer)
    hierarchy.init()
    yield hierarchy
    db.dispose()


@pytest.fixture
def client(hierarchy: Hierarchy, app_client: TestClient) -> TestClient:
    return app_client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ocsp_request(certificate: x509.Certificate, issuer: x509.Certificate, nonce=None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _post_ocsp(client: TestClient, der: bytes) -> ocsp.OCSPResponse:
    response = client.post(
        "/ocsp", content=der, headers={"Content-Type": "application/ocsp-request"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(response.content)


def test_revoke_needs_an_operator_token(client, hierarchy, bank_token):
    certificate = issue_leaf(hierarchy.db, hierarchy.issuing_ca("infrastructure"))
    url = f"/v1/certificates/{certificate.serial_number:x}/revoke"
    anonymous = client.post(url, json={"reason": "superseded"})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    forbidden = client.post(url, json={"reason": "superseded"}, headers=_auth(bank_token))
    assert forbidden.status_code == 403
    state = _post_ocsp(
        client, _ocsp_request(certificate, hierarchy.issuing_ca("infrastructure").certificate)
    )
    assert state.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_revoke_over_http_then_crl_and_ocsp_say_revoked(client, hierarchy, admin_token, tmp_path):
    ca = hierarchy.issuing_ca("infrastructure")
    certificate = issue_leaf(hierarchy.db, ca)
    before = _post_ocsp(client, _ocsp_request(certificate, ca.certificate))
    assert before.certificate_status == ocsp.OCSPCertStatus.GOOD

    url = f"/v1/certificates/{certificate.serial_number:x}/revoke"
    body = {"reason": "keyCompromise", "invalidity_date": "2026-01-02T03:04:05Z", "comment": "lost"}
    response = client.post(url, json=body, headers=_auth(admin_token))
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["reason"] == "keyCompromise"
    assert document["already_revoked"] is False
    assert document["key_blocked"] is True
    assert len(document["tracking_code"]) == 26

    again = client.post(url, json={"reason": "superseded"}, headers=_auth(admin_token))
    assert again.status_code == 200
    assert again.json()["already_revoked"] is True
    assert again.json()["reason"] == "keyCompromise"

    # OCSP: revoked at once (the cached "good" answer is not reused)
    after = _post_ocsp(client, _ocsp_request(certificate, ca.certificate))
    assert after.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert after.revocation_reason == x509.ReasonFlags.key_compromise

    crl_response = client.get(f"/crl/{ca.publication_name}.crl")
    assert crl_response.status_code == 200
    assert crl_response.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(crl_response.content)
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    assert entry is not None
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    (tmp_path / "crl.der").write_bytes(crl_response.content)
    assert lint("lint_crl", tmp_path / "crl.der", "-t", "CRL", "-p", "PKIX").returncode == 0

    delta = client.get(f"/crl/{ca.publication_name}-delta.crl")
    assert delta.status_code == 200
    assert x509.load_der_x509_crl(delta.content).extensions.get_extension_for_class(
        x509.DeltaCRLIndicator
    )


@pytest.mark.parametrize(
    ("serial", "body", "status", "slug"),
    [
        ("0123456789abcdef01", {"reason": "superseded"}, 404, "not-found"),
        ("not-hex", {"reason": "superseded"}, 400, "invalid-serial"),
        (None, {"reason": "lostPhone"}, 400, "invalid-reason"),
        (None, {"reason": "removeFromCRL"}, 400, "invalid-reason"),
        (
            None,
            {"reason": "keyCompromise", "invalidity_date": "2999-01-01T00:00:00Z"},
            400,
            "revocation-refused",
        ),
    ],
    ids=["unknown", "bad-serial", "bad-reason", "remove-from-crl", "future-invalidity"],
)
def test_bad_revocations_are_problems_and_change_nothing(
    client, hierarchy, admin_token, serial, body, status, slug
):
    ca = hierarchy.issuing_ca("infrastructure")
    certificate = issue_leaf(hierarchy.db, ca)
    serial = serial or f"{certificate.serial_number:x}"
    response = client.post(
        f"/v1/certificates/{serial}/revoke", json=body, headers=_auth(admin_token)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(slug)
    state = _post_ocsp(client, _ocsp_request(certificate, ca.certificate))
    assert state.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_ocsp_unknown_unauthorized_malformed_and_get(client, hierarchy):
    ca = hierarchy.issuing_ca("persons")
    stranger = make_pki()
    foreign, _ = stranger.leaf()
    assert (
        _post_ocsp(client, _ocsp_request(foreign, stranger.ca)).response_status
        == ocsp.OCSPResponseStatus.UNAUTHORIZED
    )
    never_issued, _ = make_pki().leaf()
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        _hash(ca.certificate.subject.public_bytes()),
        _hash(_key_bits(ca.certificate)),
        never_issued.serial_number,
        hashes.SHA1(),
    )
    unknown = _post_ocsp(client, builder.build().public_bytes(Encoding.DER))
    assert unknown.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    assert (
        _post_ocsp(client, b"certainly not DER").response_status
        == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    certificate = issue_leaf(hierarchy.db, ca)
    encoded = base64.b64encode(_ocsp_request(certificate, ca.certificate)).decode()
    got = client.get(f"/ocsp/{encoded}")
    assert got.status_code == 200
    assert "max-age" in got.headers["cache-control"]
    assert ocsp.load_der_ocsp_response(got.content).certificate_status == ocsp.OCSPCertStatus.GOOD
    bad = client.get("/ocsp/%%%not-base64")
    assert ocsp.load_der_ocsp_response(bad.content).response_status == (
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    # A newline inside the percent-decoded path once fell through to a 404.
    for path in ("/ocsp/ab%0Acd", "/ocsp/%0A", "/ocsp/6h%C2%85%0A%C2%9A"):
        answered = client.get(path)
        assert answered.status_code == 200, path
        assert ocsp.load_der_ocsp_response(answered.content).response_status == (
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        )


def _hash(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA1())
    digest.update(data)
    return digest.finalize()


def _key_bits(certificate: x509.Certificate) -> bytes:
    from asn1crypto import x509 as asn1_x509

    spki = asn1_x509.PublicKeyInfo.load(
        certificate.public_key().public_bytes(
            Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return bytes(spki["public_key"].contents[1:])


def test_unknown_crl_is_a_problem(client):
    response = client.get("/crl/nobody.crl")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_openssl_ocsp_client_against_uvicorn(hierarchy, live_server, tmp_path: Path, admin_token):
    """openssl ocsp -nonce over real HTTP: good, revoked and unknown."""
    ca = hierarchy.issuing_ca("persons")
    good = issue_leaf(hierarchy.db, ca)
    revoked = issue_leaf(hierarchy.db, ca)
    import httpx

    with httpx.Client(base_url=live_server.url) as http:
        response = http.post(
            f"/v1/certificates/{revoked.serial_number:x}/revoke",
            json={"reason": "cessationOfOperation"},
            headers=_auth(admin_token),
        )
        assert response.status_code == 200, response.text
    (tmp_path / "root.pem").write_bytes(pem(ca.chain[-1]))
    (tmp_path / "ca.pem").write_bytes(pem(ca.certificate))
    (tmp_path / "good.pem").write_bytes(pem(good))
    (tmp_path / "revoked.pem").write_bytes(pem(revoked))
    common = ["openssl", "ocsp", "-issuer", tmp_path / "ca.pem", "-CAfile", tmp_path / "root.pem",
              "-url", f"{live_server.url}/ocsp", "-nonce"]  # fmt: skip

    answer = run(*common, "-cert", tmp_path / "good.pem", "-respout", tmp_path / "good.der")
    output = answer.stdout + answer.stderr
    assert "Response verify OK" in output, output
    assert f"{tmp_path / 'good.pem'}: good" in output, output
    assert lint("lint_ocsp_response", tmp_path / "good.der").returncode == 0

    answer = run(*common, "-cert", tmp_path / "revoked.pem")
    output = answer.stdout + answer.stderr
    assert "Response verify OK" in output, output
    assert f"{tmp_path / 'revoked.pem'}: revoked" in output, output
    assert "Reason: cessationOfOperation" in output, output

    answer = run(*common, "-serial", "0x1234567890abcdef1234")
    output = answer.stdout + answer.stderr
    assert "Response verify OK" in output, output
    assert "0x1234567890abcdef1234: unknown" in output, output


def _plain_segment(text: str) -> bool:
    """One URL path segment (no slash, not a dot segment the client would collapse)."""
    return "/" not in text and text not in (".", "..")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    serial=st.text(min_size=1, max_size=50).filter(_plain_segment),
    body=st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["reason", "invalidity_date", "comment", "other"]),
            st.one_of(st.text(max_size=30), st.integers(), st.none(), st.booleans()),
        ),
    ),
    crl_name=st.text(min_size=1, max_size=40).filter(_plain_segment),
    # printable: a control character cannot be in a URL path, and no route matches it
    encoded=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=80),
)
def test_status_endpoints_never_answer_500(client, admin_token, serial, body, crl_name, encoded):
    from urllib.parse import quote

    revoke = client.post(
        f"/v1/certificates/{quote(serial, safe='')}/revoke", json=body, headers=_auth(admin_token)
    )
    assert revoke.status_code in (400, 404, 415, 422), revoke.text
    crl = client.get(f"/crl/{quote(crl_name, safe='')}.crl")
    assert crl.status_code in (200, 404), crl.text
    answer = client.get(f"/ocsp/{quote(encoded, safe='')}")
    assert answer.status_code == 200
    assert ocsp.load_der_ocsp_response(answer.content).response_status in (
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        ocsp.OCSPResponseStatus.UNAUTHORIZED,
    )
