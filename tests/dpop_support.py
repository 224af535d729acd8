"""A DPoP client's side (RFC 9449 §4.2), built with joserfc as a client library would.

Each attack test changes one thing of an otherwise correct proof, so a proof is
made from parts that can each be overridden.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, Key


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ath(access_token: str) -> str:
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


class DPoPKey:
    """A client's DPoP key pair (ES256 unless told)."""

    def __init__(self, key: Key | None = None, alg: str = "ES256") -> None:
        self.key: Key = key if key is not None else ECKey.generate_key("P-256")
        self.alg = alg

    @property
    def jkt(self) -> str:
        return str(self.key.thumbprint())

    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        signer: Key | None = None,
    ) -> str:
        """A proof for ``method`` ``url``; ``header``/``claims`` override or add members
        (a value of None removes one); ``signer`` signs instead of this key."""
        protected: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk()}
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if access_token is not None:
            body["ath"] = ath(access_token)
        for target, changes in ((protected, header), (body, claims)):
            for name, value in (changes or {}).items():
                if value is None:
                    target.pop(name, None)
                else:
                    target[name] = value
        payload = json.dumps(body).encode()
        return jws.serialize_compact(
            protected, payload, signer or self.key, algorithms=[protected["alg"]]
        )


def unsigned_proof(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS put together by hand (alg none, or a MAC no library would make for us)."""
    return ".".join(
        (
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(claims).encode()),
            b64url(signature),
        )
    )
