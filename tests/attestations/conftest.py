"""Fixtures: a throwaway PKI, the attestation signer, issuer and verifier, a holder key."""

from __future__ import annotations

import pytest
from attest_helpers import ISSUER
from attest_pki import TestPki, build_pki
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from idp.attestations.issuer import AttestationIssuer
from idp.attestations.signing import AttestationSigner
from idp.attestations.verifier import AttestationVerifier


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return build_pki()


@pytest.fixture(scope="session")
def signer(pki: TestPki) -> AttestationSigner:
    return AttestationSigner(pki.leaf_key, (pki.leaf, pki.issuing))


@pytest.fixture(scope="session")
def attestation_issuer(signer: AttestationSigner) -> AttestationIssuer:
    return AttestationIssuer(signer, ISSUER)


@pytest.fixture
def verifier(pki: TestPki) -> AttestationVerifier:
    return AttestationVerifier([pki.root])


@pytest.fixture(scope="session")
def holder_key() -> ECKey:
    return ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
