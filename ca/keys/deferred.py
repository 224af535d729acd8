"""A key store opened on first use.

The app serves CA certificates (AIA) without touching keys, and a missing
passphrase or absent HSM should fail the requests that sign (as a clear 503),
not the start-up or the requests that only read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ca.keys import KeyStore, Signer


class DeferredKeyStore:
    def __init__(self, opener: Callable[[], KeyStore]) -> None:
        self._opener = opener
        self._store: KeyStore | None = None
        self._lock = threading.Lock()

    def _get(self) -> KeyStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._opener()  # KeyStoreError propagates; retried next time
        return self._store

    @property
    def backend(self) -> str:
        return self._get().backend

    def generate(self, label: str, curve: str) -> Signer:
        return self._get().generate(label, curve)

    def load(self, key_ref: str) -> Signer:
        return self._get().load(key_ref)

    def exists(self, label: str) -> bool:
        return self._get().exists(label)

    def ref_for(self, label: str) -> str:
        return self._get().ref_for(label)
