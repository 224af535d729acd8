"""Issue #12, "Trust under attack": what an operator-API caller tries against issuance.

Each test plays the attacker against the real app (ASGI), the real CLI, the real
``openssl`` and ``pkilint``, and checks the attack fails with a clear refusal
that changes nothing (or, for ceremony profiles, only the audit log).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient
from pki_helpers import VENV_BIN, make_csr, openssl_verify, write_pem
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from ca.keys import open_keystore
from ca.names import InvalidDNSName, check_dns_name
from ca.settings import CASettings
from idp.clients import create_client
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.secrets import ensure_secrets, load_secrets
from idp.settings import Settings
from idp.storage.certificates import CertificateRecord
from idp.storage.engine import Database
from idp.storage.models import AuditEntry
from policies.certificate_profiles import (
    PROFILES_DIR,
    ProfileError,
    load_profiles,
    parse_profile,
)

# The CLI and the per-name cases run on SQLite alone: what they check is above storage.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def ca_db(
    hoviyat_settings: Settings, init_report: dict, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "attack test passphrase")
    db = Database(hoviyat_settings.resolved_database_url)
    Hierarchy(
        db, open_keystore(CASettings(), hoviyat_settings.data_dir), hoviyat_settings.issuer
    ).init()
    yield db
    db.dispose()


@pytest.fixture
def operator_token(ca_db: Database, hoviyat_settings: Settings, app_client: TestClient) -> str:
    """A plain CA operator: may request certificates, nothing more."""
    key = load_secrets(hoviyat_settings.resolved_secrets_file).client_secret_key
    with ca_db.session() as session:
        created = create_client(
            session, key, name="Counter CA operator", service_code="hoviyat-admin",
            roles=["ca_operator"],
        )  # fmt: skip
        client_id, secret = created.client.client_id, created.client_secret
    assert secret is not None
    response = app_client.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def certificate_count(db: Database) -> int:
    with db.session() as session:
        return int(session.exec(select(func.count()).select_from(CertificateRecord)).one())


def audit_events(db: Database, event_type: str) -> list[AuditEntry]:
    with db.session() as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.event_type == event_type)))


def post_certificate(client: TestClient, token: str, body: dict) -> tuple[int, dict, str]:
    response = client.post(
        "/v1/certificates", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.json(), response.headers["content-type"]


def assert_problem(status: int, body: dict, content_type: str, expected: int, slug: str) -> None:
    assert status == expected, body
    assert content_type == "application/problem+json"
    assert body["type"].endswith("/" + slug), body
    assert body["detail"] and "\n" not in body["detail"]


def signed_csr(
    key: ec.EllipticCurvePrivateKey,
    extensions: list[asn1_x509.Extension],
    hash_algorithm: hashes.HashAlgorithm = hashes.SHA256(),
    algorithm_name: str = "sha256_ecdsa",
) -> bytes:
    """A DER CSR assembled by hand: what ``cryptography``'s builder would never produce."""
    spki = key.public_key().public_bytes(
        Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attributes = []
    if extensions:
        attributes = [asn1_csr.CRIAttribute({"type": "extension_request", "values": [extensions]})]
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": asn1_x509.Name.build({"common_name": "attacker"}),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(spki),
            "attributes": attributes,
        }
    )
    tbs = info.dump()
    return asn1_csr.CertificationRequest(
        {
            "certification_request_info": asn1_csr.CertificationRequestInfo.load(tbs),
            "signature_algorithm": {"algorithm": algorithm_name},
            "signature": key.sign(tbs, ec.ECDSA(hash_algorithm)),
        }
    ).dump()


def san(*dns_names: str) -> asn1_x509.Extension:
    return asn1_x509.Extension(
        {
            "extn_id": "subject_alt_name",
            "critical": False,
            "extn_value": asn1_x509.GeneralNames(
                [asn1_x509.GeneralName("dns_name", name) for name in dns_names]
            ),
        }
    )


def pem_csr(der: bytes) -> str:
    return x509.load_der_x509_csr(der).public_bytes(Encoding.PEM).decode()


# -- forged revocation status -------------------------------------------------------------


def _forge_good_answer(
    victim: x509.Certificate,
    issuer: x509.Certificate,
    responder: x509.Certificate,
    responder_key: ec.EllipticCurvePrivateKey,
) -> bytes:
    now = datetime.now(UTC)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=victim,
            issuer=issuer,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=1),
            next_update=now + timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        .certificates([responder])
        .sign(responder_key, hashes.SHA256())
    )
    return response.public_bytes(Encoding.DER)


def test_attack_forged_ocsp_with_operator_issued_responder_cert_is_refused(
    ca_db: Database,
    app_client: TestClient,
    operator_token: str,
    living_person: str,
    tmp_path: Path,
) -> None:
    # A certificate is issued, then revoked for key compromise.
    person = {
        "profile": "person-authentication",
        "subject": {"national_code": living_person},
    }
    status, victim_body, _ = post_certificate(
        app_client, operator_token, {**person, "csr": make_csr()[0].decode()}
    )
    assert status == 201, victim_body
    revoked = app_client.post(
        f"/v1/certificates/{victim_body['serial']}/revoke",
        json={"reason": "keyCompromise"},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert revoked.status_code == 200, revoked.text
    victim = x509.load_pem_x509_certificate(victim_body["certificate"].encode())
    issuer = x509.load_pem_x509_certificate(victim_body["chain"][0].encode())
    root = x509.load_pem_x509_certificate(victim_body["chain"][-1].encode())

    # The attacker, a CA operator, asks the API for a responder certificate for their key.
    attacker_key = ec.generate_private_key(ec.SECP256R1())
    before = certificate_count(ca_db)
    status, body, content_type = post_certificate(
        app_client,
        operator_token,
        {
            "csr": make_csr(attacker_key)[0].decode(),
            "profile": "ocsp-responder",
            "subject": {"service_name": "totally the OCSP responder"},
            "issuing_ca": "persons",
            "reason": "routine",
        },
    )
    if status == 201:
        responder = x509.load_pem_x509_certificate(body["certificate"].encode())
    else:
        # Refused: the best the attacker has is an ordinary certificate for the same key.
        status_person, fallback, _ = post_certificate(
            app_client, operator_token, {**person, "csr": make_csr(attacker_key)[0].decode()}
        )
        assert status_person == 201, fallback
        responder = x509.load_pem_x509_certificate(fallback["certificate"].encode())

    forged = tmp_path / "forged.der"
    forged.write_bytes(_forge_good_answer(victim, issuer, responder, attacker_key))
    result = subprocess.run(
        ["openssl", "ocsp", "-respin", str(forged),
         "-issuer", str(write_pem(tmp_path / "issuer.pem", [issuer])),
         "-CAfile", str(write_pem(tmp_path / "root.pem", [root])),
         "-cert", str(write_pem(tmp_path / "victim.pem", [victim])),
         "-no_nonce"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert not (result.returncode == 0 and "victim.pem: good" in result.stdout), (
        "openssl accepted a forged 'good' for a revoked certificate:\n" + result.stdout
    )
    assert "Response Verify Failure" in result.stderr + result.stdout

    assert_problem(status, body, content_type, 403, "profile-ceremony-only")
    assert certificate_count(ca_db) == before + 1  # only the attacker's fallback certificate
    refusals = audit_events(ca_db, "certificate_refused")
    assert len(refusals) == 1
    assert refusals[0].operation == "ocsp-responder" and refusals[0].outcome == "refused"
    assert refusals[0].detail["reason"] == "profile-ceremony-only"
    assert refusals[0].tracking_code in body["detail"]


def test_attack_service_signing_cert_through_operator_api_is_refused(
    ca_db: Database, app_client: TestClient, operator_token: str
) -> None:
    # A service-signing certificate would let its holder sign attestations and
    # audit checkpoints as Hoviyat itself.
    status, body, content_type = post_certificate(
        app_client,
        operator_token,
        {
            "csr": make_csr()[0].decode(),
            "profile": "service-signing",
            "subject": {"service_name": "Hoviyat attestations"},
        },
    )
    assert_problem(status, body, content_type, 403, "profile-ceremony-only")
    assert certificate_count(ca_db) == 0
    assert [e.operation for e in audit_events(ca_db, "certificate_refused")] == ["service-signing"]


@sqlite_only
def test_attack_ocsp_responder_cert_through_cli_issue_is_refused(
    tmp_path: Path,
    database_url: str,
    synthetic_registry_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from idp.cli.ca import ca_app

    data_dir = tmp_path / "data"
    for name, value in {
        "HOVIYAT_DATA_DIR": str(data_dir),
        "HOVIYAT_DATABASE_URL": database_url,
        "HOVIYAT_REGISTRY_ADAPTER": "synthetic",
        "HOVIYAT_REGISTRY_PATH": str(synthetic_registry_path),
        "HOVIYAT_ISSUER": "https://pki.hoviyat.ir",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("HOVIYAT_CA_PASSPHRASE", "HOVIYAT_CA_PASSPHRASE_FILE", "HOVIYAT_CA_KEY_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    ensure_secrets(data_dir / "secrets.json")
    runner = CliRunner()
    assert runner.invoke(ca_app, ["init"]).exit_code == 0
    csr = tmp_path / "responder.pem"
    csr.write_bytes(make_csr()[0])
    result = runner.invoke(
        ca_app,
        ["issue", "--csr", str(csr), "--profile", "ocsp-responder", "--issuing-ca",
         "persons", "--service-name", "responder"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "profile-ceremony-only" in result.stderr
    assert "Traceback" not in result.stderr
    db = Database(database_url)
    try:
        assert certificate_count(db) == 0
        assert len(audit_events(db, "certificate_refused")) == 1
    finally:
        db.dispose()


def test_ceremony_path_issues_responder_profiles_and_audits_them(pki: Pki) -> None:
    """The function CA ceremony commands call: allowed, and audited as a ceremony."""
    issued = pki.ceremony_certificate(
        Request(
            csr=make_csr()[0],
            profile="ocsp-responder",
            subject=SubjectReference(service_name="Persons CA OCSP Responder"),
            requested_by="ceremony-officer",
            request_reason="key ceremony 2026-12",
            actor_type="administrator",
            issuing_ca="persons",
        )
    )
    usage = issued.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.ExtendedKeyUsageOID.OCSP_SIGNING]
    issued_events = audit_events(pki.db, "certificate_issued")
    assert [e.detail.get("issuance") for e in issued_events] == ["ceremony"]
    assert issued_events[0].actor_id == "ceremony-officer"


def test_attack_profile_with_ocsp_signing_but_operator_issuance_does_not_load(
    tmp_path: Path,
) -> None:
    # A profile edit that would reopen the hole is refused when the profile loads.
    source = PROFILES_DIR / "ocsp-responder.toml"
    text = source.read_text().replace('issuance = "ceremony"', 'issuance = "operator"')
    assert 'issuance = "operator"' in text
    edited = tmp_path / "ocsp-responder.toml"
    edited.write_text(text)
    with pytest.raises(ProfileError, match="ceremony"):
        parse_profile(edited)
    assert load_profiles()["ocsp-responder"].ceremony_only
    assert load_profiles()["service-signing"].ceremony_only
    assert not load_profiles()["tls-server"].ceremony_only


# -- names that must never be issued ------------------------------------------------------

FORBIDDEN_NAMES = {
    "xn--a.gov.ir": "IDNA 2008",  # an A-label that decodes to nothing valid
    "xn--pypal-4ve.ir": "mixes the scripts",  # "pаypal" with a Cyrillic а
    "gov.ir": "public suffix",
    "*.gov.ir": "wildcard directly over the public suffix",
    "*.ir": "wildcard directly over the public suffix",
    "ab--cd.agency.gov.ir": "reserved LDH label",
    "intranet.local": "Internal Name",
}


@sqlite_only
@pytest.mark.parametrize("name", sorted(FORBIDDEN_NAMES))
def test_attack_tls_name_that_must_never_be_issued_is_refused(
    name: str, ca_db: Database, app_client: TestClient, operator_token: str
) -> None:
    for csr_names in ((), (name,)):  # approved by the operator, and also asked for in the CSR
        status, body, content_type = post_certificate(
            app_client,
            operator_token,
            {
                "csr": make_csr(dns=csr_names)[0].decode(),
                "profile": "tls-server",
                "subject": {"dns_names": [name]},
            },
        )
        assert_problem(status, body, content_type, 400, "dns-name-invalid")
        assert FORBIDDEN_NAMES[name] in body["detail"]
    assert certificate_count(ca_db) == 0


@pytest.mark.parametrize(
    "name", ["api.agency.gov.ir", "*.agency.gov.ir", "xn--mgbai9azgqp6j.ir", "WWW.Example.COM."]
)
def test_ordinary_and_idn_names_are_still_accepted(name: str) -> None:
    assert check_dns_name(name) == name.lower().rstrip(".")


def test_u_label_is_refused_with_its_a_label_named() -> None:
    with pytest.raises(InvalidDNSName, match=r"xn--pgbr8t\.ir"):
        check_dns_name("پست.ir")


# -- CSR parsing that crashed --------------------------------------------------------------


def test_attack_csr_with_two_subject_alt_names_is_one_line_refusal_over_http(
    ca_db: Database, app_client: TestClient, operator_token: str
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = signed_csr(key, [san("api.agency.gov.ir"), san("evil.example.com")])
    status, body, content_type = post_certificate(
        app_client,
        operator_token,
        {"csr": pem_csr(csr), "profile": "tls-server",
         "subject": {"dns_names": ["api.agency.gov.ir"]}},
    )  # fmt: skip
    assert_problem(status, body, content_type, 400, "csr-malformed")
    assert "subjectAltName" in body["detail"] and "more than once" in body["detail"]
    assert certificate_count(ca_db) == 0


@sqlite_only
def test_attack_csr_with_two_subject_alt_names_is_one_line_refusal_on_cli(
    tmp_path: Path,
    database_url: str,
    synthetic_registry_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "HOVIYAT_DATA_DIR": str(tmp_path / "data"),
        "HOVIYAT_DATABASE_URL": database_url,
        "HOVIYAT_REGISTRY_ADAPTER": "synthetic",
        "HOVIYAT_REGISTRY_PATH": str(synthetic_registry_path),
        "HOVIYAT_ISSUER": "https://pki.hoviyat.ir",
        "HOVIYAT_CA_PASSPHRASE": "cli attack passphrase",
    }
    ensure_secrets(tmp_path / "data" / "secrets.json")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = tmp_path / "dup.der"
    csr.write_bytes(signed_csr(key, [san("api.agency.gov.ir"), san("evil.example.com")]))
    hoviyat = [str(VENV_BIN / "hoviyat")]
    environment = {**os.environ, **env}
    assert (
        subprocess.run([*hoviyat, "ca", "init"], env=environment, capture_output=True).returncode
        == 0
    )
    result = subprocess.run(
        [*hoviyat, "ca", "issue", "--csr", str(csr), "--profile", "tls-server",
         "--dns", "api.agency.gov.ir"],
        env=environment, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "csr-malformed" in result.stderr, result.stderr
    assert result.stdout == ""


def test_attack_sha1_signed_csr_is_refused_as_sha1_not_called_altered(
    ca_db: Database, app_client: TestClient, operator_token: str, living_person: str
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = signed_csr(key, [], hashes.SHA1(), "sha1_ecdsa")
    assert x509.load_der_x509_csr(csr).is_signature_valid is False  # cryptography's own verdict
    status, body, content_type = post_certificate(
        app_client,
        operator_token,
        {"csr": pem_csr(csr), "profile": "person-authentication",
         "subject": {"national_code": living_person}},
    )  # fmt: skip
    assert_problem(status, body, content_type, 400, "csr-signature-algorithm-refused")
    assert "SHA-1" in body["detail"] and "altered" not in body["detail"]
    assert certificate_count(ca_db) == 0


# -- the infrastructure CA and CA/B Forum's serverauth lint ------------------------------------


def test_attack_tls_chain_from_infrastructure_ca_lints_clean_under_cabf_serverauth(
    pki: Pki, tmp_path: Path
) -> None:
    issued = pki.request_certificate(
        Request(
            csr=make_csr(dns=("api.agency.gov.ir",))[0],
            profile="tls-server",
            subject=SubjectReference(dns_names=("api.agency.gov.ir",)),
            requested_by="operator",
        )
    )
    infrastructure = issued.chain[0]
    path = write_pem(tmp_path / "infrastructure.pem", [infrastructure])
    for kind in (["-d"], ["-t", "INTERNAL-UNCONSTRAINED-TLS-CA"]):
        result = subprocess.run(
            [str(VENV_BIN / "lint_cabf_serverauth_cert"), "lint", "-s", "WARNING", *kind,
             str(path)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    usage = infrastructure.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert openssl_verify(tmp_path, issued.certificate, issued.chain, "sslserver").returncode == 0


# -- unknown JSON fields -------------------------------------------------------------------------


def test_attack_unknown_validity_days_field_is_refused_not_ignored(
    ca_db: Database, app_client: TestClient, operator_token: str, living_person: str
) -> None:
    base = {
        "csr": make_csr()[0].decode(),
        "profile": "person-authentication",
        "subject": {"national_code": living_person},
    }
    for body in (
        {**base, "validity_days": 3650},
        {**base, "subject": {"national_code": living_person, "is_ca": True}},
    ):
        status, answer, content_type = post_certificate(app_client, operator_token, body)
        assert status == 422, answer
        assert content_type == "application/problem+json"
        assert "validity_days" in str(answer) or "is_ca" in str(answer)
    assert certificate_count(ca_db) == 0


def test_attack_unknown_field_in_revocation_is_refused_not_ignored(
    ca_db: Database, app_client: TestClient, operator_token: str, living_person: str
) -> None:
    status, issued, _ = post_certificate(
        app_client,
        operator_token,
        {"csr": make_csr()[0].decode(), "profile": "person-authentication",
         "subject": {"national_code": living_person}},
    )  # fmt: skip
    assert status == 201
    response = app_client.post(
        f"/v1/certificates/{issued['serial']}/revoke",
        json={"reason": "superseded", "revocation_date": "2020-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "revocation_date" in response.text
    read = app_client.get(
        f"/v1/certificates/{issued['serial']}",
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert read.json()["status"] == "issued"
