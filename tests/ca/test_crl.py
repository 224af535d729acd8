"""CRL building (ca/crl.py): pkilint, the openssl CLI, partitions and delta CRLs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from status_helpers import BASE_URL, NOW, ThrowawayPKI, lint, make_pki, pem, run

from ca.crl import (
    KeySigner,
    RevokedEntry,
    build_crl,
    crl_distribution_point,
    crl_file_name,
    crl_partition_for,
    crl_url,
    partitions_needed,
    split_by_partition,
)
from ca.revocation import RevocationReason

DAY = timedelta(days=1)


def _crl(
    pki: ThrowawayPKI, entries: list[RevokedEntry], number: int = 1, **options: object
) -> bytes:
    return build_crl(
        issuer=pki.ca,
        signer=KeySigner(pki.ca_key),
        entries=entries,
        crl_number=number,
        this_update=NOW,
        next_update=NOW + DAY,
        **options,  # type: ignore[arg-type]
    )


def _verify(tmp_path: Path, pki: ThrowawayPKI, crl_der: bytes, certificate: x509.Certificate):
    paths = pki.write(tmp_path)
    crl_path = tmp_path / "crl.pem"
    crl_path.write_bytes(x509.load_der_x509_crl(crl_der).public_bytes(Encoding.PEM))
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(pem(certificate))
    return run(
        "openssl", "verify", "-crl_check", "-CAfile", paths["root"], "-untrusted", paths["ca"],
        "-CRLfile", crl_path, leaf,
    )  # fmt: skip


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP256R1()], ids=["p384", "p256"])
def test_full_crl_lints_clean_and_openssl_verifies_it(tmp_path: Path, curve: ec.EllipticCurve):
    pki = make_pki(curve)
    revoked, _ = pki.leaf()
    entries = [
        RevokedEntry(
            revoked.serial_number, NOW, RevocationReason.keyCompromise, invalidity_date=NOW - DAY
        ),
        RevokedEntry(0x1234567890ABCDEF, NOW, RevocationReason.superseded),
        RevokedEntry(0xFEDCBA0987654321, NOW - DAY, RevocationReason.unspecified),
    ]
    der = _crl(
        pki, entries, 7, freshest_crl=crl_url(BASE_URL, crl_file_name("persons", delta=True))
    )
    (tmp_path / "crl.der").write_bytes(der)
    result = lint("lint_crl", tmp_path / "crl.der", "-t", "CRL", "-p", "PKIX")
    assert result.returncode == 0, result.stdout + result.stderr

    paths = pki.write(tmp_path)
    checked = run(
        "openssl", "crl", "-inform", "DER", "-in", tmp_path / "crl.der", "-CAfile", paths["chain"],
        "-noout", "-verify",
    )  # fmt: skip
    assert "verify OK" in checked.stdout + checked.stderr, checked.stderr

    parsed = x509.load_der_x509_crl(der)
    assert parsed.is_signature_valid(pki.ca_key.public_key())
    assert parsed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    aki = parsed.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = pki.ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    entry = parsed.get_revoked_certificate_by_serial_number(revoked.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == NOW - DAY
    unspecified = parsed.get_revoked_certificate_by_serial_number(0xFEDCBA0987654321)
    assert unspecified is not None
    # RFC 5280 5.3.1: no reasonCode extension rather than "unspecified".
    assert len(unspecified.extensions) == 0


def test_openssl_accepts_good_certificate_and_rejects_revoked(tmp_path: Path):
    pki = make_pki()
    good, _ = pki.leaf()
    revoked, _ = pki.leaf()
    der = _crl(pki, [RevokedEntry(revoked.serial_number, NOW, RevocationReason.keyCompromise)])
    accepted = _verify(tmp_path, pki, der, good)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    rejected = _verify(tmp_path, pki, der, revoked)
    assert rejected.returncode != 0
    assert "certificate revoked" in rejected.stdout + rejected.stderr


def test_empty_crl_omits_the_revoked_list_and_lints_clean(tmp_path: Path):
    pki = make_pki()
    der = _crl(pki, [])
    (tmp_path / "empty.der").write_bytes(der)
    result = lint("lint_crl", tmp_path / "empty.der", "-t", "CRL", "-p", "PKIX")
    assert result.returncode == 0, result.stdout
    assert len(x509.load_der_x509_crl(der)) == 0
    good, _ = pki.leaf()
    assert _verify(tmp_path, pki, der, good).returncode == 0


def test_delta_crl_carries_the_base_number_and_lints_clean(tmp_path: Path):
    pki = make_pki()
    revoked, _ = pki.leaf()
    der = _crl(
        pki,
        [RevokedEntry(revoked.serial_number, NOW, RevocationReason.cessationOfOperation)],
        number=12,
        delta_base=11,
    )
    (tmp_path / "delta.der").write_bytes(der)
    result = lint("lint_crl", tmp_path / "delta.der", "-t", "CRL", "-p", "PKIX")
    assert result.returncode == 0, result.stdout
    parsed = x509.load_der_x509_crl(der)
    indicator = parsed.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical
    assert indicator.value.crl_number == 11
    # a delta CRL does not advertise another delta
    with pytest.raises(x509.ExtensionNotFound):
        parsed.extensions.get_extension_for_class(x509.FreshestCRL)


def test_delta_base_must_precede_the_delta_number():
    pki = make_pki()
    with pytest.raises(ValueError, match="base CRL number"):
        _crl(pki, [], number=3, delta_base=3)


def test_next_update_must_follow_this_update():
    pki = make_pki()
    with pytest.raises(ValueError, match="nextUpdate"):
        build_crl(
            issuer=pki.ca,
            signer=KeySigner(pki.ca_key),
            entries=[],
            crl_number=1,
            this_update=NOW,
            next_update=NOW,
        )


def test_partition_is_a_pure_function_of_the_serial():
    serials = [0x7F00_0000_0000_0001 + 7919 * i for i in range(4000)]
    first = [crl_partition_for(serial, 4) for serial in serials]
    assert first == [crl_partition_for(serial, 4) for serial in serials]
    assert set(first) == {0, 1, 2, 3}
    assert all(crl_partition_for(serial, 1) == 0 for serial in serials)
    with pytest.raises(ValueError):
        crl_partition_for(1, 0)
    assert crl_distribution_point(BASE_URL, "persons", 17, partitions=4) == (
        f"{BASE_URL}/crl/persons-p1.crl"
    )
    assert crl_distribution_point(BASE_URL, "persons", 17) == f"{BASE_URL}/crl/persons.crl"
    assert crl_file_name("persons", generation=2, partition=3, partitions=4, delta=True) == (
        "persons-g2-p3-delta.crl"
    )


def test_partitions_needed_keeps_every_crl_under_the_threshold():
    assert partitions_needed(10, max_entries=100) == 1
    assert partitions_needed(100, max_entries=100) == 1
    needed = partitions_needed(1000, max_entries=100)
    assert needed >= 10
    serials = [0x10_0000_0000_0000 + 104729 * i for i in range(1000)]
    buckets = split_by_partition((RevokedEntry(s, NOW) for s in serials), needed)
    assert max(len(bucket) for bucket in buckets) <= 100


def test_partitioned_crl_covers_only_its_own_partition(tmp_path: Path):
    """Each partition CRL has an IDP equal to its certificates' CDP; OpenSSL matches them."""
    pki = make_pki(partitions=4)
    leaves = [pki.leaf()[0] for _ in range(12)]
    by_partition: dict[int, list[x509.Certificate]] = {}
    for leaf in leaves:
        by_partition.setdefault(crl_partition_for(leaf.serial_number, 4), []).append(leaf)
    partition, members = next(iter(by_partition.items()))
    url = crl_url(BASE_URL, crl_file_name("persons", partition=partition, partitions=4))
    revoked = members[0]
    der = _crl(
        pki,
        [RevokedEntry(revoked.serial_number, NOW, RevocationReason.affiliationChanged)],
        distribution_point=url,
    )
    (tmp_path / "part.der").write_bytes(der)
    assert lint("lint_crl", tmp_path / "part.der", "-t", "CRL", "-p", "PKIX").returncode == 0
    idp = x509.load_der_x509_crl(der).extensions.get_extension_for_class(
        x509.IssuingDistributionPoint
    )
    assert idp.critical
    assert idp.value.full_name == [x509.UniformResourceIdentifier(url)]

    refused = _verify(tmp_path, pki, der, revoked)
    assert "certificate revoked" in refused.stdout + refused.stderr
    other = next(leaf for p, group in by_partition.items() if p != partition for leaf in group)
    # OpenSSL refuses to use another partition's CRL for this certificate.
    outsider = _verify(tmp_path, pki, der, other)
    assert outsider.returncode != 0
    assert "different CRL scope" in outsider.stdout + outsider.stderr
