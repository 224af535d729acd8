"""Fixtures for the issuance side of the CA: a real hierarchy on a real database, with
CA keys in encrypted files or in SoftHSM2 (``ca_backend`` is parametrised over both).

SoftHSM2 is set up once per test session: a token in a temporary directory
(``SOFTHSM2_CONF`` points there before the PKCS#11 module loads). Each test
gets its own key-label prefix on that token, so tests never see each other's keys.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pki_helpers import ISSUER, PEPPER

from ca.keys import KeyStore, open_keystore
from ca.settings import CASettings
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Pki
from idp.storage.certificates import CertificateAuthority
from idp.storage.engine import Database
from idp.storage.migrate import upgrade
from verifiers.registry.base import Registries
from verifiers.registry.synthetic import SyntheticRegistry

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not SOFTHSM_MODULE.exists():
        pytest.skip("SoftHSM2 is not installed")
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "hoviyat-test",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ],
        check=True,
        capture_output=True,
    )
    return {"SOFTHSM2_CONF": str(conf), "token": "hoviyat-test", "pin": "1234"}


def ca_settings_for(backend: str, token: dict[str, str] | None) -> CASettings:
    if backend == "pkcs11":
        assert token is not None
        return CASettings(
            key_backend="pkcs11",
            pkcs11_module=SOFTHSM_MODULE,
            pkcs11_token_label=token["token"],
            pkcs11_pin=token["pin"],
            pkcs11_label_prefix=f"t{secrets.token_hex(4)}-",
        )
    return CASettings(key_backend="file", passphrase="correct horse battery staple")


@pytest.fixture(params=["file", "pkcs11"])
def ca_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ca_settings(ca_backend: str, request: pytest.FixtureRequest) -> CASettings:
    """Settings for a fresh key store of this backend (tests that change the hierarchy)."""
    token = request.getfixturevalue("softhsm_token") if ca_backend == "pkcs11" else None
    return ca_settings_for(ca_backend, token)


@pytest.fixture
def fresh_keys(ca_settings: CASettings, tmp_path: Path) -> KeyStore:
    return open_keystore(ca_settings, tmp_path / "data")


@dataclass
class _Template:
    keys: KeyStore
    rows: list[CertificateAuthority]


_TEMPLATES: dict[str, _Template] = {}


def _template(backend: str, request: pytest.FixtureRequest) -> _Template:
    """A hierarchy made once per backend per session: keys are slow to make, rows cheap to copy."""
    if backend not in _TEMPLATES:
        token = request.getfixturevalue("softhsm_token") if backend == "pkcs11" else None
        directory = request.getfixturevalue("tmp_path_factory").mktemp(f"ca-{backend}")
        keys = open_keystore(ca_settings_for(backend, token), directory)
        url = f"sqlite:///{directory / 'template.db'}"
        upgrade(url)
        template_db = Database(url)
        hierarchy = Hierarchy(template_db, keys, ISSUER)
        hierarchy.init()
        _TEMPLATES[backend] = _Template(keys, hierarchy.rows())
        template_db.dispose()
    return _TEMPLATES[backend]


@pytest.fixture
def keys(ca_backend: str, request: pytest.FixtureRequest) -> KeyStore:
    return _template(ca_backend, request).keys


@pytest.fixture
def hierarchy(db: Database, ca_backend: str, request: pytest.FixtureRequest) -> Hierarchy:
    """The initialised hierarchy (root + persons, organisations, infrastructure) in ``db``."""
    template = _template(ca_backend, request)
    with db.session() as session:
        for row in template.rows:
            session.add(CertificateAuthority.model_validate(row.model_dump()))
    return Hierarchy(db, template.keys, ISSUER)


@pytest.fixture
def registry(synthetic_registry_path: Path) -> Iterator[Registries]:
    registries = SyntheticRegistry(synthetic_registry_path).registries()
    yield registries
    registries.close()


@pytest.fixture
def pki(db: Database, hierarchy: Hierarchy, registry: Registries) -> Pki:
    return Pki.create(db, hierarchy, registry, PEPPER)


@pytest.fixture
def living_person(synthetic_registry_path: Path) -> str:
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        return next(p.national_code for p, _ in registry.iter_persons(50) if p.alive)
    finally:
        registry.close()


@pytest.fixture
def active_entity(synthetic_registry_path: Path) -> str:
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        return next(e.national_id for e in registry.iter_entities(50) if e.status == "active")
    finally:
        registry.close()
