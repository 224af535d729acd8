"""``hoviyat ca revoke`` and ``hoviyat ca crl`` (idp/cli/ca_status.py) through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from cryptography import x509
from status_helpers import issue_leaf, run
from typer.testing import CliRunner

from ca.keys import open_keystore
from ca.settings import CASettings
from idp.cli.ca_status import register
from idp.pki.hierarchy import Hierarchy


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db):
    monkeypatch.setenv("HOVIYAT_DATABASE_URL", db.url)
    monkeypatch.setenv("HOVIYAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOVIYAT_ISSUER", "http://127.0.0.1:8000")
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "cli test passphrase")
    hierarchy = Hierarchy(
        db, open_keystore(CASettings(), tmp_path / "data"), "http://127.0.0.1:8000"
    )
    hierarchy.init()
    ca_app = typer.Typer()
    register(ca_app)
    yield ca_app, hierarchy


def test_revoke_then_crl_out(cli, db, tmp_path: Path):
    ca_app, hierarchy = cli
    certificate = issue_leaf(db, hierarchy.issuing_ca("organisations"))
    runner = CliRunner()
    result = runner.invoke(
        ca_app,
        ["revoke", f"{certificate.serial_number:x}", "--reason", "superseded",
         "--comment", "replaced by a new seal", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["reason"] == "superseded"
    assert document["already_revoked"] is False

    again = runner.invoke(
        ca_app, ["revoke", f"{certificate.serial_number:x}", "--reason", "cessationOfOperation"]
    )
    assert again.exit_code == 0
    assert "the first reason stands" in again.stdout

    out = tmp_path / "organisations.crl"
    published = runner.invoke(ca_app, ["crl", "--ca", "organisations", "--out", str(out)])
    assert published.exit_code == 0, published.output
    crl = x509.load_der_x509_crl(out.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
    text = run("openssl", "crl", "-inform", "DER", "-in", out, "-noout", "-text")
    assert "Superseded" in text.stdout

    delta = runner.invoke(ca_app, ["crl", "--ca", "organisations", "--delta", "--json"])
    assert delta.exit_code == 0, delta.output
    summary = json.loads(delta.stdout)["crls"][0]
    assert summary["delta"] is True
    assert (
        summary["base_crl_number"]
        == crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    )


@pytest.mark.parametrize(
    ("arguments", "message", "code"),
    [
        (["revoke", "abcdef0123456789", "--reason", "superseded"], "no certificate", 2),
        (["revoke", "xyz", "--reason", "superseded"], "not a hexadecimal serial", 1),
        (["revoke", "abcdef0123456789", "--reason", "stolen"], "unknown revocation reason", 1),
        (["crl", "--ca", "nobody"], "no CA 'nobody'", 1),
    ],
    ids=["unknown-serial", "bad-serial", "bad-reason", "unknown-ca"],
)
def test_errors_are_one_line_and_non_zero(cli, arguments, message, code):
    ca_app, _ = cli
    result = CliRunner().invoke(ca_app, arguments)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_revoke_with_invalidity_date(cli, db):
    ca_app, hierarchy = cli
    certificate = issue_leaf(db, hierarchy.issuing_ca("persons"))
    result = CliRunner().invoke(
        ca_app,
        ["revoke", f"{certificate.serial_number:x}", "--reason", "key_compromise",
         "--invalidity-date", "2026-01-02T03:04:05", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["reason"] == "keyCompromise"
    assert document["invalidity_date"] == "2026-01-02T03:04:05+00:00"
    assert document["key_blocked"] is True
