"""``hoviyat attest verify``: exit codes and the report a receiver reads, in Persian or English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from attest_helpers import NOW, sign
from attest_pki import build_pki
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from idp.cli.attest import attest_app

runner = CliRunner()


@pytest.fixture
def root_pem(pki, tmp_path):
    path = tmp_path / "root.pem"
    path.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    return path


def test_valid_file_exits_zero_with_a_persian_report(attestation_issuer, root_pem, tmp_path):
    token = tmp_path / "attestation.sd-jwt"
    token.write_text(sign(attestation_issuer).sd_jwt)
    result = runner.invoke(attest_app, ["verify", str(token), "--root", str(root_pem)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("معتبر")
    assert "زنجیره گواهی تا ریشه هویت" in result.output
    assert "نام" in result.output


def test_string_and_stdin_forms_in_english(attestation_issuer, root_pem):
    jwt = sign(attestation_issuer).jwt
    direct = runner.invoke(attest_app, ["verify", jwt, "--root", str(root_pem), "--lang", "en"])
    assert direct.exit_code == 0 and direct.output.startswith("VALID (jwt)")
    piped = runner.invoke(attest_app, ["verify", "-", "--root", str(root_pem)], input=jwt + "\n")
    assert piped.exit_code == 0


def test_expired_attestation_exits_one_naming_the_check(attestation_issuer, root_pem):
    stale = sign(attestation_issuer, issued_at=NOW - timedelta(days=40)).jwt
    result = runner.invoke(attest_app, ["verify", stale, "--root", str(root_pem), "--lang", "en"])
    assert result.exit_code == 1
    assert result.output.startswith("INVALID")
    assert "Validity period: FAILED" in result.output
    assert "Disclosed" not in result.output  # the JWT form has no disclosures to report


def test_foreign_root_exits_one(attestation_issuer, tmp_path):
    other = tmp_path / "other.pem"
    other.write_bytes(build_pki().root.public_bytes(serialization.Encoding.PEM))
    result = runner.invoke(
        attest_app, ["verify", sign(attestation_issuer).sd_jwt, "--root", str(other), "--json"]
    )
    assert result.exit_code == 1
    assert '"failed_check": "chain_untrusted"' in result.output


def test_missing_key_binding_when_required_exits_one(attestation_issuer, root_pem, holder_key):
    token = sign(attestation_issuer, holder=holder_key).sd_jwt
    args = ["verify", token, "--root", str(root_pem), "--require-key-binding", "--json"]
    result = runner.invoke(attest_app, [*args, "--audience", "https://x", "--nonce", "n"])
    assert result.exit_code == 1
    assert '"failed_check": "kb_missing"' in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "no-such-file.jwt", "--root", "ROOT"],
        ["verify", "a.b.c", "--root", "/nonexistent/root.pem"],
        ["verify", "a.b.c", "--root", "ROOT", "--lang", "de"],
        ["verify", "a.b.c", "--root", "ROOT", "--require-key-binding"],
    ],
)
def test_usage_errors_exit_two_with_one_line(args, root_pem):
    args = [str(root_pem) if a == "ROOT" else a for a in args]
    result = runner.invoke(attest_app, args)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1


def test_root_given_as_der_works_too(pki, attestation_issuer, tmp_path):
    der = tmp_path / "root.crt"
    der.write_bytes(pki.root.public_bytes(serialization.Encoding.DER))
    result = runner.invoke(attest_app, ["verify", sign(attestation_issuer).jwt, "--root", str(der)])
    assert result.exit_code == 0, result.output


def test_holder_presents_a_key_bound_subset(attestation_issuer, root_pem, tmp_path):
    holder = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "holder.pem"
    key_file.write_bytes(
        holder.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    holder_jwk = ECKey.import_key(holder.public_key()).as_dict()
    issued = sign(attestation_issuer, holder=ECKey.import_key(holder_jwk))
    presented = runner.invoke(
        attest_app,
        [
            "present",
            issued.sd_jwt,
            "--claim",
            "alive",
            "--key",
            str(key_file),
            "--audience",
            "https://bank.example",
            "--nonce",
            "n-1",
        ],
    )
    assert presented.exit_code == 0, presented.output
    token = presented.output.strip()
    result = runner.invoke(
        attest_app,
        [
            "verify",
            token,
            "--root",
            str(root_pem),
            "--json",
            "--require-key-binding",
            "--audience",
            "https://bank.example",
            "--nonce",
            "n-1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"facts": {"alive": true}' in result.output


def test_attestation_named_for_someone_else_is_refused(attestation_issuer, root_pem):
    token = sign(attestation_issuer, recipient="https://bank.example").jwt
    args = ["verify", token, "--root", str(root_pem), "--json"]
    assert runner.invoke(attest_app, [*args, "--audience", "https://bank.example"]).exit_code == 0
    other = runner.invoke(attest_app, [*args, "--audience", "https://shop.example"])
    assert other.exit_code == 1 and '"failed_check": "audience"' in other.output
