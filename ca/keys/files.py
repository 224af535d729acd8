"""Encrypted PKCS#8 key files (one PEM file per key, mode 0600).

The passphrase comes from ``HOVIYAT_CA_PASSPHRASE`` or ``HOVIYAT_CA_PASSPHRASE_FILE``.
Decrypted keys are cached per store: the KDF is deliberately slow and a CA
signs thousands of times per second.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ca.keys import CURVE_HASHES, CURVES, CAHash, KeyStoreError
from ca.settings import CASettings, read_secret

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise KeyStoreError(f"key label {label!r} must be letters, digits, '.', '_' or '-'")
    return label


def curve_name(curve: ec.EllipticCurve) -> str:
    for name, known in CURVES.items():
        if known.name == curve.name:
            return name
    raise KeyStoreError(f"CA keys must be P-256 or P-384, not {curve.name}")


# Made once: the algorithm objects cost a tenth of a P-256 signature to build.
_ECDSA = {curve: ec.ECDSA(digest()) for curve, digest in CURVE_HASHES.items()}


@dataclass
class FileSigner:
    key_ref: str
    curve: str
    private_key: ec.EllipticCurvePrivateKey

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def hash_algorithm(self) -> CAHash:
        return CURVE_HASHES[self.curve]()

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data, _ECDSA[self.curve])


@dataclass
class FileKeyStore:
    directory: Path
    passphrase: bytes
    backend: str = "file"
    _cache: dict[str, FileSigner] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: CASettings, data_dir: Path) -> FileKeyStore:
        directory = settings.key_dir or data_dir / "ca"
        passphrase_file = settings.passphrase_file
        default_file = directory / "passphrase"
        if not settings.passphrase and passphrase_file is None and default_file.exists():
            passphrase_file = default_file
        try:
            passphrase = read_secret(settings.passphrase, passphrase_file)
        except OSError as exc:
            raise KeyStoreError(f"cannot read the CA passphrase file: {exc.strerror}") from exc
        if not passphrase:
            raise KeyStoreError(
                "no CA passphrase: set HOVIYAT_CA_PASSPHRASE_FILE or HOVIYAT_CA_PASSPHRASE"
            )
        return cls(directory, passphrase.encode())

    def _path(self, label: str) -> Path:
        return self.directory / f"{check_label(label)}.key.pem"

    def ref_for(self, label: str) -> str:
        return f"file:{check_label(label)}"

    def exists(self, label: str) -> bool:
        return self._path(label).exists()

    def generate(self, label: str, curve: str) -> FileSigner:
        path = self._path(label)
        key = ec.generate_private_key(CURVES[curve])
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self.passphrase),
        )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            # O_EXCL: two "ca init" racing never overwrite each other's key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyStoreError(f"key {label!r} already exists") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        signer = FileSigner(f"file:{label}", curve, key)
        self._cache[signer.key_ref] = signer
        return signer

    def load(self, key_ref: str) -> FileSigner:
        if key_ref in self._cache:
            return self._cache[key_ref]
        backend, _, label = key_ref.partition(":")
        if backend != "file":
            raise KeyStoreError(f"key {key_ref!r} is not in the file key store")
        try:
            pem = self._path(label).read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"key file for {label!r} not found in {self.directory}") from None
        try:
            key = serialization.load_pem_private_key(pem, self.passphrase)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(f"cannot decrypt key {label!r}: wrong passphrase?") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyStoreError(f"key {label!r} is not an EC key")
        signer = FileSigner(key_ref, curve_name(key.curve), key)
        self._cache[key_ref] = signer
        return signer
