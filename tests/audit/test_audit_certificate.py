"""The log key certified by the infrastructure CA: verify checks checkpoints back to the root."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from audit_helpers import PEPPER, append_events
from cryptography.hazmat.primitives.serialization import Encoding

from ca.keys import open_keystore
from ca.settings import CASettings
from idp.audit.certificate import certify_log_key
from idp.audit.export import export_lines
from idp.audit.verify import verify_export
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Pki
from idp.storage.engine import Database
from idp.storage.migrate import upgrade
from verifiers.registry.synthetic import SyntheticRegistry

KEK = b"k" * 32
ISSUER = "https://id.hoviyat.test"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def make_hierarchy(db: Database, directory: Path) -> Hierarchy:
    keys = open_keystore(CASettings(key_backend="file", passphrase="audit test"), directory)
    hierarchy = Hierarchy(db, keys, ISSUER)
    hierarchy.init()
    return hierarchy


@SQLITE_ONLY
def test_verify_checks_the_log_key_chain_to_the_root(
    db: Database, tmp_path: Path, synthetic_registry_path: Path
) -> None:
    hierarchy = make_hierarchy(db, tmp_path / "ca")
    registries = SyntheticRegistry(synthetic_registry_path).registries()
    try:
        pki = Pki.create(db, hierarchy, registries, PEPPER)
        key_id, chain = certify_log_key(db, pki, KEK, "operator-1")
    finally:
        registries.close()
    root = hierarchy.issuing_ca("root").certificate
    root_pem = root.public_bytes(Encoding.PEM)
    (tmp_path / "root.pem").write_bytes(root_pem)
    (tmp_path / "chain.pem").write_text(chain)
    # the real openssl agrees the leaf chains to the root
    leaf, _, rest = chain.partition("-----END CERTIFICATE-----\n")
    (tmp_path / "leaf.pem").write_text(leaf + "-----END CERTIFICATE-----\n")
    (tmp_path / "untrusted.pem").write_text(rest)
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"), "-untrusted",
         str(tmp_path / "untrusted.pem"), str(tmp_path / "leaf.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    append_events(db, 4)
    blob = b"".join(
        export_lines(
            db, key_encryption_key=KEK, pepper=PEPPER, origin="hoviyat.test/audit",
            actor_type="auditor", actor_id="a",
        )
    )  # fmt: skip
    report = verify_export(io.BytesIO(blob), root_pem=root_pem)
    assert report.ok, [p.message for p in report.problems]
    assert "root CA" in report.trusted_by

    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(other_url)
    other = make_hierarchy(Database(other_url), tmp_path / "other")
    stranger = other.issuing_ca("root").certificate.public_bytes(Encoding.PEM)
    refused = verify_export(io.BytesIO(blob), root_pem=stranger)
    assert not refused.ok
    assert f"log key {key_id}" in refused.problems[0].message


@SQLITE_ONLY
def test_certify_command_then_verify_with_root(
    db: Database,
    database_url: str,
    tmp_path: Path,
    synthetic_registry_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from idp.cli.audit import audit_app
    from idp.secrets import ensure_secrets

    data = tmp_path / "data"
    ensure_secrets(data / "secrets.json")
    for name, value in {
        "HOVIYAT_DATA_DIR": str(data),
        "HOVIYAT_DATABASE_URL": database_url,
        "HOVIYAT_REGISTRY_PATH": str(synthetic_registry_path),
        "HOVIYAT_ISSUER": ISSUER,
        "HOVIYAT_CA_PASSPHRASE": "audit test",
    }.items():
        monkeypatch.setenv(name, value)
    keys = open_keystore(CASettings(), data)
    Hierarchy(db, keys, ISSUER).init()
    root = Hierarchy(db, keys, ISSUER).issuing_ca("root").certificate
    (tmp_path / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    runner = CliRunner()
    certified = runner.invoke(audit_app, ["certify"])
    assert certified.exit_code == 0, certified.output
    assert "BEGIN CERTIFICATE" in certified.stdout
    export = tmp_path / "export.jsonl"
    assert runner.invoke(audit_app, ["export", "--out", str(export)]).exit_code == 0
    verified = runner.invoke(
        audit_app, ["verify", str(export), "--root", str(tmp_path / "root.pem")]
    )
    assert verified.exit_code == 0, verified.output
    assert "verified against the root CA" in verified.stdout
