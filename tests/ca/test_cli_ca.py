"""``hoviyat ca ...`` through typer's runner, on a real database and registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from pki_helpers import make_csr
from typer.testing import CliRunner

from ca.serials import serial_hex
from idp.cli.ca import ca_app
from idp.secrets import ensure_secrets

runner = CliRunner()
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def environment(
    tmp_path: Path,
    database_url: str,
    synthetic_registry_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
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
    yield data_dir


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(ca_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_init_is_idempotent_and_makes_a_private_passphrase(environment: Path) -> None:
    code, out, _ = invoke("init", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["created"] == ["root", "persons", "organisations", "infrastructure"]
    passphrase = environment / "ca" / "passphrase"
    assert passphrase.stat().st_mode & 0o777 == 0o600
    code, out, _ = invoke("init", "--json")
    assert code == 0 and json.loads(out)["created"] == []


def test_issue_prints_the_chain_and_list_shows_it(
    environment: Path, tmp_path: Path, living_person: str
) -> None:
    assert invoke("init")[0] == 0
    csr_path = tmp_path / "request.pem"
    csr_path.write_bytes(make_csr()[0])
    code, out, err = invoke(
        "issue",
        "--csr",
        str(csr_path),
        "--profile",
        "person-authentication",
        "--subject-national-code",
        living_person,
        "--reason",
        "counter visit",
    )
    assert code == 0, err
    chain = x509.load_pem_x509_certificates(out.encode())
    assert len(chain) == 3  # leaf, persons CA, root
    chain[0].verify_directly_issued_by(chain[1])
    chain[1].verify_directly_issued_by(chain[2])

    code, out, _ = invoke("list", "--json")
    listed = json.loads(out)
    assert [c["serial"] for c in listed] == [serial_hex(chain[0].serial_number)]
    assert listed[0]["status"] == "issued" and listed[0]["profile"] == "person-authentication"
    # The same document as GET /v1/certificates/{serial}: the certificate itself included.
    assert x509.load_pem_x509_certificate(listed[0]["certificate"].encode()) == chain[0]
    assert listed[0]["tracking_code"]


def test_refusal_is_one_line_and_non_zero(
    environment: Path, tmp_path: Path, living_person: str
) -> None:
    assert invoke("init")[0] == 0
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a csr")
    code, out, err = invoke(
        "issue",
        "--csr",
        str(garbage),
        "--profile",
        "person-authentication",
        "--subject-national-code",
        living_person,
    )
    assert code == 1
    assert err.count("\n") == 1 and "csr-malformed" in err
    assert out == ""
    code, _, err = invoke("issue", "--csr", str(tmp_path / "missing.pem"), "--profile", "x")
    assert code == 1 and "cannot read" in err


def test_profiles_json_lists_every_profile(environment: Path) -> None:
    code, out, _ = invoke("profiles", "--json")
    assert code == 0
    names = {p["name"] for p in json.loads(out)}
    assert names == {
        "person-authentication",
        "person-signing",
        "entity-seal",
        "tls-server",
        "tls-server-short",
        "backoffice-client",
        "oauth-client",
        "ocsp-responder",
        "service-signing",
    }


def test_rollover_and_offline_root_commands(environment: Path, tmp_path: Path) -> None:
    assert invoke("init")[0] == 0
    code, out, _ = invoke("rollover", "--issuing", "persons")
    assert code == 0 and "generation 2" in out
    # A CSR for a new organisations generation, signed by this (online) root, installed back.
    csr_file = tmp_path / "organisations.csr"
    assert invoke("csr", "--issuing", "organisations", "--out", str(csr_file))[0] == 0
    code, chain_pem, err = invoke(
        "sign-issuing", "--csr", str(csr_file), "--online-url", "https://pki.hoviyat.ir"
    )
    assert code == 0, err
    chain_file = tmp_path / "chain.pem"
    chain_file.write_text(chain_pem)
    code, out, err = invoke("install-issuing", "--chain", str(chain_file))
    assert code == 0, err
    code, out, _ = invoke("init", "--json")
    rows = json.loads(out)["authorities"]
    active = {r["name"]: r["generation"] for r in rows if r["active"]}
    assert active == {"root": 1, "persons": 2, "organisations": 2, "infrastructure": 1}
    assert invoke("rollover", "--issuing", "root")[0] == 1


def test_fail_pending_reports_what_it_marked(environment: Path) -> None:
    assert invoke("init")[0] == 0
    code, out, _ = invoke("fail-pending", "--older-than-minutes", "5", "--json")
    assert code == 0 and json.loads(out) == {"failed": []}
