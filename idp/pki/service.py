"""Building the PKI parts for the app (one per process, on ``app.state``) and for the CLI."""

from __future__ import annotations

import threading

from fastapi import Request

from ca.keys import KeyStore, open_keystore
from ca.keys.deferred import DeferredKeyStore
from ca.settings import CASettings
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Pki
from idp.secrets import load_secrets
from idp.settings import Settings
from idp.storage.engine import Database
from verifiers.registry.base import Registries


def open_keys(settings: Settings, ca_settings: CASettings | None = None) -> KeyStore:
    return open_keystore(ca_settings or CASettings(), settings.data_dir)


def build_pki(
    settings: Settings,
    db: Database,
    registries: Registries,
    subject_pepper: bytes | None = None,
    keys: KeyStore | None = None,
) -> Pki:
    pepper = subject_pepper or load_secrets(settings.resolved_secrets_file).subject_pepper
    hierarchy = Hierarchy(
        db, keys or DeferredKeyStore(lambda: open_keys(settings)), settings.issuer
    )
    return Pki.create(db, hierarchy, registries, pepper)


_build_lock = threading.Lock()


def get_pki(request: Request) -> Pki:
    """The app's PKI, built on first use (the CA keys are opened only if certificates are)."""
    state = request.app.state
    pki: Pki | None = getattr(state, "hoviyat_pki", None)
    if pki is None:
        # Sync dependencies run in a thread pool: build once even if two requests race.
        with _build_lock:
            pki = getattr(state, "hoviyat_pki", None)
            if pki is None:
                hoviyat = state.hoviyat
                pki = build_pki(
                    hoviyat.settings,
                    hoviyat.db,
                    hoviyat.registries,
                    hoviyat.secrets.subject_pepper,
                )
                state.hoviyat_pki = pki
    return pki
