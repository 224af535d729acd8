"""The 7-day TLS profile ACME orders may name (``tls-server-short``): issued through the
real registration step and judged by tools Hoviyat does not control, ``openssl
verify`` and pkilint's CA/B Forum linter, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from acme_pki_support import (  # noqa: F401
    VENV_BIN,
    acme_pki,
    issue_tls,
    make_csr,
    run,
    write_pem,
)
from cryptography import x509

from idp.acme.settings import AcmeSettings
from idp.pki.refusals import CertificateRefused
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage.certificate_store import certificate_record
from policies.certificate_profiles import load_profiles

NAMES = ("www.agency.gov.ir", "api.agency.gov.ir")
SEVEN_DAYS = timedelta(days=7)  # CA/B Forum BR 1.6.1, short-lived, from 15 March 2026


def test_short_profile_is_the_tls_profile_but_for_its_lifetime() -> None:
    profiles = load_profiles()
    short, full = profiles["tls-server-short"], profiles["tls-server"]
    assert short.validity_days == 7
    differing = {
        key
        for key, value in short.to_json().items()
        if full.to_json()[key] != value and key not in ("name", "description", "validity_days")
    }
    assert differing == set()
    assert short.max_dns_names == full.max_dns_names and short.csr_san == "subset"
    assert "tls-server-short" in AcmeSettings().profiles  # orders may name it


def test_short_lived_certificate_verifies_and_passes_the_cabf_linter(
    acme_pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    issued = issue_tls(acme_pki, NAMES, "acme:test-account")
    certificate = issued.certificate

    # RFC 5280 §4.1.2.5: both ends count, so the period is not_after - not_before + 1 s.
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime + timedelta(seconds=1) <= SEVEN_DAYS
    assert lifetime > timedelta(days=6)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sorted(san.value.get_values_for_type(x509.DNSName)) == sorted(NAMES)

    root = write_pem(tmp_path / "root.pem", [issued.chain[-1]])
    untrusted = write_pem(tmp_path / "untrusted.pem", list(issued.chain[:-1]))
    leaf = write_pem(tmp_path / "leaf.pem", [certificate])
    verified = run(
        "openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", str(root),
        "-untrusted", str(untrusted), str(leaf),
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr

    linted = run(
        str(VENV_BIN / "lint_cabf_serverauth_cert"), "lint", "-s", "WARNING",
        "-t", "DV-FINAL-CERTIFICATE", str(leaf),
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout + linted.stderr

    record = certificate_record(acme_pki.db, issued.serial_hex)
    assert record is not None and record.profile == "tls-server-short"
    assert record.requested_by == "acme:test-account" and record.status == "issued"


def test_attack_short_profile_still_refuses_names_the_order_did_not_approve(
    acme_pki: Pki,  # noqa: F811
) -> None:
    # csr_san = "subset": a CSR with an extra name is refused, nothing is signed.
    with pytest.raises(CertificateRefused):
        acme_pki.request_certificate(
            Request(
                csr=make_csr((*NAMES, "www.other-agency.gov.ir")),
                profile="tls-server-short",
                subject=SubjectReference(dns_names=NAMES),
                requested_by="acme:test-account",
            )
        )
    assert acme_pki.records(profile="tls-server-short") == []
