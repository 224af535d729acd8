"""JOSE signing keys shared by every worker through the database.

Each algorithm has at most one ``active`` key (signs), at most one ``next`` key
(published in the JWKS before it signs, so relying parties that cache the JWKS
already know it when it takes over) and any number of ``retired`` keys
(published until the tokens they signed have expired). Private keys are
sealed at rest under the server's key-encryption key (:mod:`idp.secrets_at_rest`),
bound to their ``kid`` so a row cannot be swapped under another id.

Workers reload the ring from the database every few seconds, and at once when
a token names a ``kid`` they do not know, so a rotation made by one process
(``hoviyat keys rotate``) reaches all of them without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jws import extract_compact
from sqlmodel import Session

from idp.secrets_at_rest import Purpose, open_private_key, seal_private_key
from idp.storage import token_keys
from idp.storage.engine import Database
from idp.storage.models import TokenSigningKey
from idp.tokens.rfc7515 import CompactSigner

SIGNING_ALGORITHMS = ("ES256", "PS256", "RS256")
DEFAULT_ALGORITHM = "ES256"
RETIRED_KEY_LIFETIME = timedelta(days=1)
_RELOAD_SECONDS = 5.0
_VERIFIED_CACHE_SIZE = 10_000

Key = ECKey | RSAKey


class TokenError(ValueError):
    """A token that must not be trusted: bad signature, wrong type, expired..."""


def _generate(alg: str) -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256", auto_kid=True)
    if alg in ("RS256", "PS256"):
        return RSAKey.generate_key(2048, auto_kid=True)
    raise ValueError(f"unsupported signing algorithm {alg!r}; use one of {SIGNING_ALGORITHMS}")


def _new_row(kek: bytes, alg: str, state: str) -> TokenSigningKey:
    key = _generate(alg)
    kid = key.kid or key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    private = key.private_key
    if private is None:  # a generated key always has its private half
        raise RuntimeError(f"generated {alg} key {kid} has no private key")
    now = datetime.now(UTC)
    return TokenSigningKey(
        kid=kid,
        alg=alg,
        state=state,
        public_jwk=public,
        private_key_encrypted=seal_private_key(kek, Purpose.JWT, kid, private),
        activated_at=now if state == "active" else None,
    )


def ensure_signing_keys(
    session: Session, kek: bytes, algorithms: Iterable[str] = SIGNING_ALGORITHMS
) -> list[str]:
    """Create an active key for each algorithm that has none; returns the new kids."""
    created = [
        _new_row(kek, alg, "active")
        for alg in algorithms
        if token_keys.active_key(session, alg) is None
    ]
    token_keys.save_keys(session, created)
    return [row.kid for row in created]


def rotate(session: Session, kek: bytes, alg: str = DEFAULT_ALGORITHM) -> dict[str, str | None]:
    """One rotation step: next → active, active → retired, a fresh next is published.

    With no ``next`` key yet, the first call only publishes one; the second call
    makes it sign. Retired keys older than their tokens' lifetime leave the JWKS.
    """
    now = datetime.now(UTC)
    rows = token_keys.keys_for_rotation(session, alg)
    changed: list[TokenSigningKey] = []
    by_state: dict[str, list[TokenSigningKey]] = {}
    for row in rows:
        by_state.setdefault(row.state, []).append(row)
    promoted = retired = None
    if by_state.get("next"):
        upcoming = by_state["next"][0]
        for active in by_state.get("active", []):
            active.state, active.retired_at = "retired", now
            retired = active.kid
            changed.append(active)
        upcoming.state, upcoming.activated_at = "active", now
        promoted = upcoming.kid
        changed.append(upcoming)
    for old in by_state.get("retired", []):
        if old.retired_at is not None and now - old.retired_at > RETIRED_KEY_LIFETIME:
            old.state = "expired"
            changed.append(old)
    fresh = _new_row(kek, alg, "next")
    token_keys.save_keys(session, [*changed, fresh])
    return {"published": fresh.kid, "activated": promoted, "retired": retired}


class KeyRing:
    """Signs and verifies JWTs with the keys in the database."""

    def __init__(self, database: Database, kek: bytes) -> None:
        self._database = database
        self._kek = kek
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._signers: dict[str, CompactSigner] = {}
        self._public = KeySet([])
        self._jwks: dict[str, Any] = {"keys": []}
        self._kids: set[str] = set()
        self._private_cache: dict[str, CompactSigner] = {}
        self._verified: dict[tuple[str, str, str, str | None], dict[str, Any]] = {}
        self._public_cache: dict[str, Key] = {}

    def _reload(self) -> None:
        with self._database.read() as session:
            rows = token_keys.published_keys(session)
        signers: dict[str, CompactSigner] = {}
        public_keys: list[Any] = []
        for row in rows:
            if row.state == "active":
                # Importing an RSA private key costs milliseconds: import each once.
                signer = self._private_cache.get(row.kid)
                if signer is None:
                    private = open_private_key(
                        self._kek, Purpose.JWT, row.kid, row.private_key_encrypted
                    )
                    signer = CompactSigner(row.kid, row.alg, private)
                    self._private_cache[row.kid] = signer
                signers[row.alg] = signer
            public = self._public_cache.get(row.kid)
            if public is None:
                key_cls = ECKey if row.public_jwk["kty"] == "EC" else RSAKey
                public = key_cls.import_key(row.public_jwk)
                self._public_cache[row.kid] = public
            public_keys.append(public)
        self._signers = signers
        self._public = KeySet(public_keys)
        self._jwks = {"keys": [dict(row.public_jwk) for row in rows]}
        self._kids = {row.kid for row in rows}
        self._loaded_at = time.monotonic()

    def _fresh(self, force: bool = False) -> None:
        if force or time.monotonic() - self._loaded_at > _RELOAD_SECONDS:
            with self._lock:
                if force or time.monotonic() - self._loaded_at > _RELOAD_SECONDS:
                    self._reload()

    def jwks(self) -> dict[str, Any]:
        self._fresh()
        return self._jwks

    def sign(
        self, claims: Mapping[str, Any], *, alg: str = DEFAULT_ALGORITHM, typ: str = "JWT"
    ) -> str:
        self._fresh()
        signer = self._signers.get(alg)
        if signer is None:
            self._fresh(force=True)
            signer = self._signers.get(alg)
            if signer is None:
                raise RuntimeError(f"no active {alg} signing key: run 'hoviyat init'")
        return signer.sign(claims, typ=typ)

    def verify(
        self,
        token: str,
        *,
        typ: str,
        issuer: str,
        audience: str | None = None,
        leeway: int = 5,
    ) -> dict[str, Any]:
        """Verify a token this server issued (RFC 8725 §3: fixed algorithms and explicit type).

        A back-office client sends the same access token for minutes; its
        verified claims are remembered until it expires, so the signature is
        checked once per token rather than once per request. Revocable tokens
        are checked against their grant by the caller, after this.
        """
        cache_key = (token, typ, issuer, audience)
        cached = self._verified.get(cache_key)
        if cached is not None and cached.get("exp", 0) > time.time():
            return dict(cached)
        claims = self._verify(token, typ=typ, issuer=issuer, audience=audience, leeway=leeway)
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[cache_key] = claims
        return dict(claims)

    def _verify(
        self, token: str, *, typ: str, issuer: str, audience: str | None, leeway: int
    ) -> dict[str, Any]:
        self._fresh()
        try:
            header = extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise TokenError("malformed token") from exc
        if header.get("kid") not in self._kids:
            self._fresh(force=True)
        try:
            decoded = jwt.decode(token, self._public, algorithms=list(SIGNING_ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise TokenError(f"token rejected: {getattr(exc, 'description', None) or exc}") from exc
        if str(decoded.header.get("typ", "")).lower() != typ.lower():
            raise TokenError(f"token type must be {typ}")
        options: dict[str, Any] = {"iss": {"essential": True, "value": issuer}}
        if audience is not None:
            options["aud"] = {"essential": True, "value": audience}
        options["exp"] = {"essential": True}
        registry = jwt.JWTClaimsRegistry(leeway=leeway, **options)
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise TokenError(f"token rejected: {exc.description or exc}") from exc
        return decoded.claims
