"""CA key storage behind one interface: encrypted PKCS#8 files or a PKCS#11 token.

A key is named by a ``key_ref`` string stored with the CA (``file:<label>`` or
``pkcs11:<label>``). Callers get a :class:`Signer`; whether the private key is
in this process (``private_key`` set, fast path for ``cryptography``'s
builders) or inside an HSM (``private_key`` is None, signatures come back from
the token) is hidden by :mod:`ca.signing`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ca.settings import CASettings

CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
# The hash that matches each curve's strength (RFC 5480 section 4).
CAHash = hashes.SHA256 | hashes.SHA384
CURVE_HASHES: dict[str, type[CAHash]] = {
    "P-256": hashes.SHA256,
    "P-384": hashes.SHA384,
}


class KeyStoreError(Exception):
    """A key cannot be created or loaded: missing, wrong passphrase/PIN, token absent."""


class Signer(Protocol):
    """A CA private key that can sign, wherever it lives."""

    @property
    def key_ref(self) -> str: ...

    @property
    def curve(self) -> str:
        """ "P-256" or "P-384"."""
        ...

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey | None:
        """The in-process key, or None when it stays in an HSM."""
        ...

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def hash_algorithm(self) -> CAHash: ...

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA signature (RFC 5480 Ecdsa-Sig-Value) of ``data``, :meth:`hash_algorithm`."""
        ...


class KeyStore(Protocol):
    @property
    def backend(self) -> str:
        """ "file" or "pkcs11"."""
        ...

    def generate(self, label: str, curve: str) -> Signer:
        """A new key named ``label``; refuses to overwrite an existing one."""
        ...

    def load(self, key_ref: str) -> Signer: ...

    def exists(self, label: str) -> bool: ...

    def ref_for(self, label: str) -> str:
        """The ``key_ref`` a key generated as ``label`` is stored under."""
        ...


def open_keystore(settings: CASettings, data_dir: Path) -> KeyStore:
    """The configured backend; the file backend keeps its keys under ``<data_dir>/ca``."""
    if settings.key_backend == "pkcs11":
        from ca.keys.pkcs11 import Pkcs11KeyStore

        return Pkcs11KeyStore.from_settings(settings)
    from ca.keys.files import FileKeyStore

    return FileKeyStore.from_settings(settings, data_dir)
