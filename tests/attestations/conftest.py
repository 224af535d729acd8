"""Fixtures: a throwaway PKI, signer, issuer, verifier, holder key; the app with its CA."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from attest_helpers import ISSUER
from attest_pki import TestPki, build_pki
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from idp.attestations.issuer import AttestationIssuer
from idp.attestations.signing import AttestationSigner
from idp.attestations.verifier import AttestationVerifier
from idp.pki.service import build_pki as build_hoviyat_pki
from verifiers.registry.synthetic import SyntheticRegistry


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


@pytest.fixture
def ca_ready(monkeypatch, hoviyat_app):
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "attestation tests only")
    hoviyat = hoviyat_app.state.hoviyat
    build_hoviyat_pki(
        hoviyat.settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper
    ).hierarchy.init()
    return hoviyat_app


@pytest.fixture
def representative(synthetic_registry_path):
    """A living person who currently represents an active entity, from the synthetic registry."""
    registry = SyntheticRegistry(synthetic_registry_path)
    today = datetime.now(UTC).date()
    try:
        for entity in registry.iter_entities(300):
            if entity.status != "active":
                continue
            for rep in entity.representatives:
                person = registry.person(rep.national_code)
                if rep.is_current(today) and person is not None and person.alive:
                    return person, entity
    finally:
        registry.close()
    pytest.skip("the synthetic registry has no current representative of an active entity")
