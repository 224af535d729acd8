"""Token Status List: the draft's own examples, and revocation seen by a receiver."""

from __future__ import annotations

import pytest
from attest_helpers import now_seconds, sign
from attest_pki import build_pki

from idp.attestations import status_list
from idp.attestations.issuer import status_list_uri
from idp.attestations.signing import AttestationSigner
from idp.attestations.status_list import StatusList, scatter, sign_status_list_token
from idp.attestations.verifier import AttestationVerifier


def test_one_bit_example_of_the_draft():
    statuses = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    encoded = StatusList.with_statuses(16, enumerate(statuses)).to_claim()
    assert encoded == {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}
    decoded = StatusList.from_claim(encoded)
    assert [decoded[i] for i in range(16)] == statuses


def test_two_bit_example_of_the_draft():
    statuses = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    encoded = StatusList.with_statuses(12, enumerate(statuses), bits=2).to_claim()
    assert encoded == {"bits": 2, "lst": "eNo76fITAAPfAgc"}
    assert [StatusList.from_claim(encoded)[i] for i in range(12)] == statuses


def test_index_outside_the_list_is_refused():
    with pytest.raises(IndexError):
        StatusList(8)[8] = 1


def _verifier_seeing(pki, signer, revoked: set[int]) -> AttestationVerifier:
    uri = status_list_uri("https://hoviyat.test", 1)
    token = sign_status_list_token(
        signer,
        uri,
        StatusList.with_statuses(1024, ((i, status_list.INVALID) for i in revoked)),
        now=now_seconds(),
        ttl=300,
    )
    served = {uri: token}
    return AttestationVerifier([pki.root], status_fetcher=served.__getitem__)


def test_revoked_attestation_is_rejected_online(pki, signer, attestation_issuer):
    issued = sign(attestation_issuer)  # status entry (list 1, index 7)
    for form in (issued.jwt, issued.sd_jwt):
        report = _verifier_seeing(pki, signer, {7}).verify(form, check_status=True)
        assert not report.valid and report.failed_check == "revoked"
        assert report.checks[-1].stage == "status" and report.checks[-1].outcome == "failed"


def test_unrevoked_attestation_passes_online_and_offline(pki, signer, attestation_issuer):
    issued = sign(attestation_issuer)
    online = _verifier_seeing(pki, signer, {6, 8}).verify(issued.sd_jwt, check_status=True)
    assert online.valid and online.status == "valid"
    offline = _verifier_seeing(pki, signer, {7}).verify(issued.sd_jwt)
    assert offline.valid and offline.status == "not_checked"


def test_status_list_from_an_untrusted_signer_is_rejected(pki, attestation_issuer):
    intruder = build_pki()
    forged_signer = AttestationSigner(intruder.leaf_key, (intruder.leaf, intruder.issuing))
    uri = status_list_uri("https://hoviyat.test", 1)
    token = sign_status_list_token(forged_signer, uri, StatusList(1024), now=now_seconds(), ttl=300)
    verifier = AttestationVerifier([pki.root], status_fetcher={uri: token}.__getitem__)
    report = verifier.verify(sign(attestation_issuer).sd_jwt, check_status=True)
    assert not report.valid and report.failed_check == "status_list_untrusted"


def test_status_list_for_another_uri_is_rejected(pki, signer, attestation_issuer):
    uri = status_list_uri("https://hoviyat.test", 1)
    other = sign_status_list_token(signer, uri + "0", StatusList(1024), now=now_seconds(), ttl=300)
    verifier = AttestationVerifier([pki.root], status_fetcher={uri: other}.__getitem__)
    report = verifier.verify(sign(attestation_issuer).jwt, check_status=True)
    assert report.failed_check == "status_list_malformed"


def test_scatter_is_a_keyed_permutation():
    for size in (1, 2, 16, 1000, 4096):
        assert sorted(scatter(i, size, b"k" * 32) for i in range(size)) == list(range(size))
    first = [scatter(i, 262_144, b"a" * 32) for i in range(8)]
    assert first != list(range(8))  # issuance order does not show
    assert first != [scatter(i, 262_144, b"b" * 32) for i in range(8)]  # the key matters
    with pytest.raises(ValueError):
        scatter(16, 16, b"k")
