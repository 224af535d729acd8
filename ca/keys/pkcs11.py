"""PKCS#11 keys (an HSM; SoftHSM2 in development and CI) through python-pkcs11.

Keys are generated on the token as sensitive and non-extractable: the private
half never leaves it. The token signs a digest we compute (plain CKM_ECDSA,
which every token supports, unlike the CKM_ECDSA_SHA384 combined mechanisms);
its raw ``r || s`` answer is re-encoded as the DER Ecdsa-Sig-Value X.509 wants.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pkcs11
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from ca.keys import CURVE_HASHES, CAHash, KeyStoreError
from ca.keys.files import check_label, curve_name
from ca.settings import CASettings, read_secret

_CURVE_OIDS = {"P-256": "secp256r1", "P-384": "secp384r1"}


@dataclass
class Pkcs11Signer:
    key_ref: str
    curve: str
    _key: Any
    _public: ec.EllipticCurvePublicKey
    _lock: threading.Lock
    private_key: ec.EllipticCurvePrivateKey | None = None

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def hash_algorithm(self) -> CAHash:
        return CURVE_HASHES[self.curve]()

    def sign(self, data: bytes) -> bytes:
        digest = hashes.Hash(self.hash_algorithm())
        digest.update(data)
        # One session is shared by the store; PKCS#11 sessions are not thread-safe.
        with self._lock:
            raw = self._key.sign(digest.finalize(), mechanism=Mechanism.ECDSA)
        half = len(raw) // 2
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )


_SESSIONS: dict[tuple[str, str], tuple[Any, threading.Lock]] = {}
_SESSIONS_LOCK = threading.Lock()


def _shared_session(settings: CASettings, pin: str) -> tuple[Any, threading.Lock]:
    """One logged-in session per token per process, shared by every store.

    PKCS#11 login state belongs to the application, not the session: a second
    C_Login fails with CKR_USER_ALREADY_LOGGED_IN, so sessions are shared.
    """
    key = (str(settings.pkcs11_module), settings.pkcs11_token_label)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            try:
                lib = pkcs11.lib(str(settings.pkcs11_module))
                token = lib.get_token(token_label=settings.pkcs11_token_label)
                session = token.open(user_pin=pin, rw=True)
            except (pkcs11.PKCS11Error, RuntimeError) as exc:
                raise KeyStoreError(
                    f"cannot open PKCS#11 token {settings.pkcs11_token_label!r}: "
                    f"{type(exc).__name__}"
                ) from exc
            _SESSIONS[key] = (session, threading.Lock())
        return _SESSIONS[key]


@dataclass
class Pkcs11KeyStore:
    session: Any
    label_prefix: str = ""  # several deployments (or test runs) can share one token
    backend: str = "pkcs11"
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cache: dict[str, Pkcs11Signer] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: CASettings) -> Pkcs11KeyStore:
        try:
            pin = read_secret(settings.pkcs11_pin, settings.pkcs11_pin_file)
        except OSError as exc:
            raise KeyStoreError(f"cannot read the PKCS#11 PIN file: {exc.strerror}") from exc
        if not pin:
            raise KeyStoreError("no PKCS#11 PIN: set HOVIYAT_CA_PKCS11_PIN_FILE or _PIN")
        session, lock = _shared_session(settings, pin)
        return cls(session, settings.pkcs11_label_prefix, _lock=lock)

    def _find(self, label: str, object_class: ObjectClass) -> Any | None:
        with self._lock:
            found = list(
                self.session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label})
            )
        return found[0] if found else None

    def ref_for(self, label: str) -> str:
        return f"pkcs11:{check_label(self.label_prefix + label)}"

    def exists(self, label: str) -> bool:
        full = check_label(self.label_prefix + label)
        return self._find(full, ObjectClass.PRIVATE_KEY) is not None

    def generate(self, label: str, curve: str) -> Pkcs11Signer:
        if self.exists(label):
            raise KeyStoreError(f"key {label!r} already exists on the token")
        with self._lock:
            params = self.session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVE_OIDS[curve])},
                local=True,
            )
            full = self.label_prefix + label
            params.generate_keypair(
                store=True,
                label=full,
                id=full.encode(),
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.TOKEN: True,
                    Attribute.SIGN: True,
                },
            )
        return self.load(self.ref_for(label))

    def load(self, key_ref: str) -> Pkcs11Signer:
        if key_ref in self._cache:
            return self._cache[key_ref]
        backend, _, label = key_ref.partition(":")
        if backend != "pkcs11":
            raise KeyStoreError(f"key {key_ref!r} is not on the PKCS#11 token")
        private = self._find(label, ObjectClass.PRIVATE_KEY)
        public = self._find(label, ObjectClass.PUBLIC_KEY)
        if private is None or public is None:
            raise KeyStoreError(f"key {label!r} not found on the token")
        with self._lock:
            spki = encode_ec_public_key(public)
        public_key = serialization.load_der_public_key(spki)
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise KeyStoreError(f"key {label!r} is not an EC key")
        curve = curve_name(public_key.curve)
        signer = Pkcs11Signer(key_ref, curve, private, public_key, self._lock)
        self._cache[key_ref] = signer
        return signer
