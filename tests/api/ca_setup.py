"""The CA hierarchy ``hoviyat ca init`` makes, for tests of endpoints that sign.

``hoviyat init`` leaves the CA to its own ceremony; the attestation service
and certificate issuance need it before they can answer.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from idp.pki.service import build_pki


def initialise_ca(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "api tests only")
    hoviyat = app.state.hoviyat
    build_pki(
        hoviyat.settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper
    ).hierarchy.init()
