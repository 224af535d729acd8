"""Building the PKI parts for the app (one per process, on ``app.state``) and for the CLI."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

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


_build_lock = threading.RLock()  # re-entrant: one part's build may need another part
T = TypeVar("T")
A = TypeVar("A")


def built_once(state: Any, attribute: str, build: Callable[[A], T], argument: A) -> T:
    """``state.<attribute>``, made by ``build(argument)`` on first use.

    Sync dependencies run in a thread pool: built once even if two requests race.
    """
    value: T | None = getattr(state, attribute, None)
    if value is None:
        with _build_lock:
            value = getattr(state, attribute, None)
            if value is None:
                value = build(argument)
                setattr(state, attribute, value)
    return value


def _build_app_pki(state: Any) -> Pki:
    hoviyat = state.hoviyat
    return build_pki(
        hoviyat.settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper
    )


def get_pki(request: Request) -> Pki:
    """The app's PKI, built on first use (the CA keys are opened only if certificates are)."""
    state = request.app.state
    return built_once(state, "hoviyat_pki", _build_app_pki, state)
