"""The JWS every ACME POST carries (RFC 8555 §6.2-6.4), parsed strictly from outside bytes.

Only the flattened JSON serialization (§6.2), with a protected header and no
unprotected one; algorithms ES256, ES384, RS256 (RSA of at least 2048 bits)
and EdDSA (Ed25519): never ``none``, never a MAC for an account key (§6.2).
Exactly one of ``jwk`` and ``kid``; ``nonce`` and ``url`` present (checked
against the nonce table and the resource's URL by :mod:`idp.acme.requests`).

Everything that goes wrong here is an :class:`AcmeProblem` (``malformed``,
``badSignatureAlgorithm``, ``badPublicKey``): the parser is fuzzed to raise
nothing else. Keys and signatures are joserfc's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from joserfc import jwk
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry

from idp.acme.problems import AcmeProblem, malformed

# §6.2: asymmetric only. The curve (or key size) each algorithm takes.
ALGORITHMS = ("ES256", "ES384", "RS256", "EdDSA")
_CURVES = {"ES256": "P-256", "ES384": "P-384", "EdDSA": "Ed25519"}
_KEY_TYPES = {"ES256": "EC", "ES384": "EC", "RS256": "RSA", "EdDSA": "OKP"}
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192  # bounds the cost of checking a signature with a key from outside
_REGISTRY = JWSRegistry(algorithms=list(ALGORITHMS))
with warnings.catch_warnings():
    # RFC 9864 deprecates the name "EdDSA" for "Ed25519"; RFC 8555 clients send "EdDSA".
    warnings.simplefilter("ignore")
    _ALGORITHM_MODELS = {name: _REGISTRY.get_alg(name) for name in ALGORITHMS}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MAX_PROTECTED = 8192  # base64url characters: an RSA 8192 jwk fits
_MAX_JWK_MEMBER = 2048
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_OUTER_MEMBERS = frozenset({"protected", "payload", "signature"})


@dataclass(frozen=True)
class Jws:
    """A flattened JWS whose form is good; its signature is not yet checked."""

    protected: dict[str, Any]
    protected_b64: str
    payload_b64: str
    signature: bytes
    payload: bytes
    alg: str
    url: str
    nonce: str | None
    kid: str | None
    jwk: dict[str, Any] | None

    @property
    def signing_input(self) -> bytes:
        return f"{self.protected_b64}.{self.payload_b64}".encode("ascii")


def b64url_decode(value: object, what: str) -> bytes:
    """Strict base64url (RFC 7515 §2): the URL-safe alphabet, no padding, canonical."""
    if not isinstance(value, str) or not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise malformed(f"{what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise malformed(f"{what} is not base64url") from None
    if b64url(raw) != value:  # stray bits in the last character: another spelling of raw
        raise malformed(f"{what} is not canonical base64url")
    return raw


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two members of one name: parsers disagree on which counts (RFC 7515 §4).
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _no_constants(value: str) -> Any:
    raise ValueError(f"{value} is not JSON")


def json_object(raw: bytes | str, what: str) -> dict[str, Any]:
    """A JSON object from outside: UTF-8, no duplicate members, no NaN, bounded nesting."""
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError, UnicodeDecodeError, TypeError):
        raise malformed(f"{what} is not a JSON object") from None
    if not isinstance(value, dict):
        raise malformed(f"{what} is not a JSON object")
    return value


def parse(body: bytes | str, *, require_nonce: bool = True) -> Jws:
    """The flattened JWS in ``body`` (§6.2); raises AcmeProblem on any fault of form."""
    outer = json_object(body, "the request body")
    if "signatures" in outer:
        raise malformed("send the flattened JSON serialization, not the general one (§6.2)")
    if "header" in outer:
        raise malformed("the JWS unprotected header is not allowed (§6.2)")
    if set(outer) != _OUTER_MEMBERS:
        raise malformed("a JWS has exactly the members protected, payload and signature")
    protected_b64 = outer["protected"]
    if isinstance(protected_b64, str) and len(protected_b64) > _MAX_PROTECTED:
        raise malformed("the protected header is too large")
    protected = json_object(b64url_decode(protected_b64, "protected"), "the protected header")
    payload_b64 = outer["payload"]
    payload = b64url_decode(payload_b64, "payload")
    signature = b64url_decode(outer["signature"], "signature")
    return _checked_header(protected, protected_b64, payload_b64, payload, signature, require_nonce)


def _checked_header(
    protected: dict[str, Any],
    protected_b64: str,
    payload_b64: str,
    payload: bytes,
    signature: bytes,
    require_nonce: bool,
) -> Jws:
    alg = protected.get("alg")
    if not isinstance(alg, str):
        raise malformed("the protected header has no alg")
    if alg not in ALGORITHMS:
        raise bad_algorithm(f"algorithm {alg[:20]!r} is not accepted")
    if "crit" in protected or "b64" in protected:
        # RFC 7515 §4.1.11: no extension is understood here, so none may be critical.
        raise malformed("the protected header names an extension this server does not support")
    has_jwk, has_kid = "jwk" in protected, "kid" in protected
    if has_jwk == has_kid:
        raise malformed("the protected header must carry exactly one of jwk and kid (§6.2)")
    kid = protected.get("kid")
    if has_kid and (not isinstance(kid, str) or not kid):
        raise malformed("kid is not a string")
    key = protected.get("jwk")
    if has_jwk and not isinstance(key, dict):
        raise malformed("jwk is not a JSON object")
    url = protected.get("url")
    if not isinstance(url, str) or not url:
        raise malformed("the protected header has no url (§6.4)")
    nonce = protected.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise AcmeProblem("badNonce", "the nonce is not a string")
    if require_nonce and nonce is None:
        raise AcmeProblem("badNonce", "the protected header has no nonce (§6.5)")
    return Jws(
        protected=protected,
        protected_b64=protected_b64,
        payload_b64=payload_b64,
        signature=signature,
        payload=payload,
        alg=alg,
        url=url,
        nonce=nonce,
        kid=kid if has_kid else None,
        jwk=key if has_jwk else None,
    )


def bad_algorithm(detail: str) -> AcmeProblem:
    return AcmeProblem(
        "badSignatureAlgorithm", detail, 400, extensions={"algorithms": list(ALGORITHMS)}
    )


Key = jwk.ECKey | jwk.RSAKey | jwk.OKPKey


def public_key(value: dict[str, Any], alg: str) -> Key:
    """The public key in JWK ``value``, if it suits ``alg`` (§6.2); else badPublicKey."""
    if any(member in value for member in _PRIVATE_MEMBERS):
        raise AcmeProblem("badPublicKey", "the jwk holds private key material")
    members = {k: v for k, v in value.items() if k in ("kty", "crv", "x", "y", "n", "e")}
    if any(not isinstance(v, str) or len(v) > _MAX_JWK_MEMBER for v in members.values()):
        raise AcmeProblem("badPublicKey", "the jwk's members are not short strings")
    kty = members.get("kty")
    if kty != _KEY_TYPES[alg]:
        raise AcmeProblem("badPublicKey", f"{alg} takes a {_KEY_TYPES[alg]} key, not {kty!r}")
    if alg in _CURVES and members.get("crv") != _CURVES[alg]:
        raise AcmeProblem("badPublicKey", f"{alg} takes a {_CURVES[alg]} key")
    if kty == "RSA":
        n = b64url_decode(members.get("n"), "the jwk's n").lstrip(b"\0")
        bits = int.from_bytes(n, "big").bit_length()
        if bits < MIN_RSA_BITS or bits > MAX_RSA_BITS:
            raise AcmeProblem(
                "badPublicKey", f"an RSA key of {bits} bits is not accepted (2048 to 8192)"
            )
        exponent = int.from_bytes(b64url_decode(members.get("e"), "the jwk's e"), "big")
        if exponent < 3 or exponent % 2 == 0 or exponent.bit_length() > 64:
            raise AcmeProblem("badPublicKey", "the RSA key's exponent is not acceptable")
    else:
        for name in ("x", "y") if kty == "EC" else ("x",):
            b64url_decode(members.get(name), f"the jwk's {name}")
    try:
        key = jwk.import_key(members, kty)  # type: ignore[arg-type]
    except (JoseError, ValueError):
        # joserfc's KeyParameterError for a missing or bad member; cryptography's
        # ValueError for a point off the curve or a key it cannot load.
        raise AcmeProblem("badPublicKey", "the jwk is not a valid public key") from None
    if not isinstance(key, jwk.ECKey | jwk.RSAKey | jwk.OKPKey) or key.is_private:
        raise AcmeProblem("badPublicKey", "the jwk is not a public key")
    return key


def thumbprint(key: Key) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url: the account key's identity (§8.1)."""
    return str(key.thumbprint())


def verify(parsed: Jws, key: Key) -> None:
    """Check the signature of ``parsed`` with ``key``; malformed if it does not verify (§6.2)."""
    algorithm = _ALGORITHM_MODELS[parsed.alg]
    try:
        good = algorithm.verify(parsed.signing_input, parsed.signature, key)  # type: ignore[arg-type]
    except ValueError:  # a signature cryptography cannot decode, in versions that raise
        good = False
    if not good:
        raise malformed("the JWS signature does not verify")


def mac_matches(signing_input: bytes, signature: bytes, mac_key: bytes) -> bool:
    """An HS256 MAC (the EAB's, §7.3.4) compared in constant time."""
    expected = hmac.new(mac_key, signing_input, hashlib.sha256).digest()
    return hmac.compare_digest(expected, signature)
