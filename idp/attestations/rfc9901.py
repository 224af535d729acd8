"""Selective Disclosure for JWTs (SD-JWT), RFC 9901: issuance, presentation, verification.

Format (§4): ``<Issuer-signed JWT>~<Disclosure 1>~...~<Disclosure N>~[<KB-JWT>]``.
A Disclosure (§4.2) is the base64url of the JSON array ``[salt, name, value]``
(object property) or ``[salt, value]`` (array element); its digest, base64url of
SHA-256 over the Disclosure's ASCII text, sits in an ``_sd`` array of the object
or as ``{"...": digest}`` in the array. Key Binding (§4.3) is a JWT of type
``kb+jwt`` signed by the holder key named in ``cnf``, carrying ``aud``,
``nonce``, ``iat`` and ``sd_hash`` over the presented SD-JWT.

This module knows nothing of certificates: the caller signs (a function from
payload to compact JWS) and, when verifying, resolves the issuer key from the header (``x5c``
validation lives in :mod:`idp.attestations.x5c`). Every verifier check of §7.1
and §7.3 raises :class:`~idp.attestations.errors.AttestationInvalid` with a stable ``check`` name.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeyParameters, OKPKey
from joserfc.jws import JWSRegistry

from idp.attestations.errors import AttestationInvalid

SD_ALG = "sha-256"
KB_TYP = "kb+jwt"
SEPARATOR = "~"
# Algorithms accepted for signatures; "none" is never among them (§7.1 step 2a).
ISSUER_ALGORITHMS = ("ES256",)
HOLDER_ALGORITHMS = ("ES256", "ES384", "EdDSA", "Ed25519")
_RESERVED_NAMES = frozenset({"_sd", "...", "_sd_alg"})
_SCALARS = frozenset({str, int, float, bool, type(None)})

JWSKey = ECKey | OKPKey


class _X5cRegistry(JWSRegistry):
    # joserfc caps headers at 512 bytes; an x5c chain of two certificates is ~1.5 KB.
    max_header_length = 8192


_REGISTRIES: dict[tuple[str, ...], JWSRegistry] = {}


def jws_registry(algorithms: Sequence[str]) -> JWSRegistry:
    key = tuple(algorithms)
    if key not in _REGISTRIES:
        _REGISTRIES[key] = _X5cRegistry(algorithms=list(key))
    return _REGISTRIES[key]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def digest(text: str) -> str:
    """§4.2.3: base64url(SHA-256(ASCII bytes of the Disclosure or SD-JWT string))."""
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


# --- issuance (§4.2) -------------------------------------------------------------


@dataclass(frozen=True)
class Sd:
    """Marks a dict key (``{Sd("birthdate"): ...}``) or list element as selectively disclosable."""

    value: Any


@dataclass
class _Concealer:
    disclosures: list[str] = field(default_factory=list)
    decoys: int = 0

    def conceal(self, node: Any) -> Any:
        if type(node) in _SCALARS:
            return node
        if isinstance(node, dict):
            result: dict[str, Any] = {}
            digests: list[str] = []
            for key, value in node.items():
                inner = self.conceal(value)
                if isinstance(key, Sd):
                    digests.append(self._disclose([key.value, inner]))
                else:
                    if key in _RESERVED_NAMES:
                        raise ValueError(f"claim name {key!r} is reserved by RFC 9901")
                    result[key] = inner
            if digests:
                # §4.2.5: decoy digests hide how many claims were concealed; §4.2.4.1:
                # digests are sorted so their order reveals nothing either.
                digests.extend(digest(b64url(secrets.token_bytes(16))) for _ in range(self.decoys))
                result["_sd"] = sorted(digests)
            return result
        if isinstance(node, list | tuple):
            return [
                {"...": self._disclose([self.conceal(item.value)])}
                if isinstance(item, Sd)
                else self.conceal(item)
                for item in node
            ]
        if isinstance(node, Sd):
            raise ValueError("Sd marks a dict key or a list element, not a value")
        return node

    def _disclose(self, name_and_value: list[Any]) -> str:
        salt = b64url(secrets.token_bytes(16))
        disclosure = b64url(orjson.dumps([salt, *name_and_value]))
        self.disclosures.append(disclosure)
        return digest(disclosure)


def conceal(claims: Mapping[Any, Any], decoys: int = 0) -> tuple[dict[str, Any], list[str]]:
    """Replace every :class:`Sd`-marked claim by its digest: (payload, Disclosures)."""
    concealer = _Concealer(decoys=decoys)
    payload = concealer.conceal(claims)
    payload["_sd_alg"] = SD_ALG
    return payload, concealer.disclosures


def issue(
    claims: Mapping[Any, Any],
    sign: Callable[[Mapping[str, Any]], str],
    *,
    holder_jwk: Mapping[str, Any] | None = None,
    decoys: int = 0,
) -> str:
    """An SD-JWT (§4) with no Key Binding: the issuer-signed JWT and every Disclosure."""
    payload, disclosures = conceal(claims, decoys)
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": dict(holder_jwk)}
    return SEPARATOR.join([sign(payload), *disclosures, ""])


# --- parsing and presentation (§4, §7.2) -----------------------------------------


@dataclass(frozen=True)
class SdJwt:
    """An SD-JWT split at ``~`` into its parts, not yet verified."""

    jwt: str
    disclosures: tuple[str, ...]
    kb_jwt: str | None

    @classmethod
    def parse(cls, text: str) -> SdJwt:
        text = text.strip()
        if not text.isascii():
            raise AttestationInvalid("format", "an SD-JWT is ASCII; this text is not")
        parts = text.split(SEPARATOR)
        if len(parts) < 2:
            raise AttestationInvalid("format", "an SD-JWT has at least one '~' after the JWT")
        if parts[0].count(".") != 2:
            raise AttestationInvalid("format", "the issuer-signed JWT is not in JWS compact form")
        kb = parts[-1] or None
        if kb is not None and kb.count(".") != 2:
            raise AttestationInvalid("format", "the Key Binding JWT is not in JWS compact form")
        disclosures = tuple(parts[1:-1])
        if any(not d for d in disclosures):
            raise AttestationInvalid("format", "empty Disclosure between '~' separators")
        return cls(parts[0], disclosures, kb)

    @property
    def presented(self) -> str:
        """The SD-JWT without its KB-JWT, ending in ``~``: what ``sd_hash`` covers (§4.3.1)."""
        return SEPARATOR.join([self.jwt, *self.disclosures, ""])

    def serialize(self) -> str:
        return self.presented + (self.kb_jwt or "")

    def select(self, claim_names: Iterable[str]) -> SdJwt:
        """Keep only Disclosures of the named claims (and what they contain), drop any KB-JWT."""
        wanted = set(claim_names)
        decoded = {d: _decode_disclosure(d) for d in self.disclosures}
        by_digest = {digest(d): d for d in self.disclosures}
        kept: list[str] = []

        def walk(node: Any, keep_all: bool) -> None:
            if isinstance(node, dict):
                for value in node.values():
                    walk(value, keep_all)
                for sd in node.get("_sd", ()):
                    if sd in by_digest:
                        disclosure = by_digest[sd]
                        name, value = decoded[disclosure][1], decoded[disclosure][2]
                        if keep_all or name in wanted:
                            kept.append(disclosure)
                            walk(value, True)
            elif isinstance(node, list):
                for item in node:
                    if isinstance(item, dict) and set(item) == {"..."} and item["..."] in by_digest:
                        disclosure = by_digest[item["..."]]
                        if keep_all:
                            kept.append(disclosure)
                            walk(decoded[disclosure][1], True)
                    else:
                        walk(item, keep_all)

        walk(_unverified_payload(self.jwt), False)
        return SdJwt(self.jwt, tuple(kept), None)

    def bind(
        self, holder_key: JWSKey, *, audience: str, nonce: str, issued_at: int, alg: str = "ES256"
    ) -> SdJwt:
        """§4.3: append a KB-JWT signed by the holder's key."""
        payload = {
            "iat": issued_at,
            "aud": audience,
            "nonce": nonce,
            "sd_hash": digest(self.presented),
        }
        kb = jws.serialize_compact(
            {"alg": alg, "typ": KB_TYP}, orjson.dumps(payload), holder_key, algorithms=[alg]
        )
        return SdJwt(self.jwt, self.disclosures, kb)


def _decode_disclosure(disclosure: str) -> list[Any]:
    try:
        value = orjson.loads(b64url_decode(disclosure))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise AttestationInvalid(
            "disclosure_malformed", f"Disclosure is not base64url JSON: {exc}"
        ) from exc
    if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[0], str):
        raise AttestationInvalid(
            "disclosure_malformed", "a Disclosure is [salt, name, value] or [salt, value]"
        )
    if len(value) == 3 and not isinstance(value[1], str):
        raise AttestationInvalid(
            "disclosure_malformed", "a Disclosure's claim name must be a string"
        )
    return value


def _unverified_payload(jwt: str) -> dict[str, Any]:
    try:
        payload = orjson.loads(b64url_decode(jwt.split(".")[1]))
    except (ValueError, IndexError, orjson.JSONDecodeError) as exc:
        raise AttestationInvalid("format", f"JWT payload is not base64url JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise AttestationInvalid("format", "JWT payload is not a JSON object")
    return payload


def unverified_header(jwt: str) -> dict[str, Any]:
    try:
        header = orjson.loads(b64url_decode(jwt.split(".")[0]))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise AttestationInvalid("format", f"JWS header is not base64url JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise AttestationInvalid("format", "JWS header is not a JSON object")
    return header


# --- verification (§7.1, §7.3) ---------------------------------------------------


@dataclass(frozen=True)
class KeyBindingPolicy:
    """What the verifier expects of Key Binding (§7.3 step 1 and step 5)."""

    required: bool = False
    audience: str | None = None
    nonce: str | None = None
    max_age_seconds: int = 300
    leeway_seconds: int = 60


@dataclass(frozen=True)
class Verified:
    header: dict[str, Any]
    claims: dict[str, Any]
    disclosed: tuple[str, ...]
    key_bound: bool
    kb_claims: dict[str, Any] | None


IssuerKeyResolver = Callable[[dict[str, Any], dict[str, Any]], ECKey]


def verify_jws(token: str, key: JWSKey, algorithms: Sequence[str], what: str) -> tuple[dict, dict]:
    """Signature check with an allow-list of algorithms; returns (header, payload object)."""
    # RFC 7515 §4.1.11: a JWS whose crit names extensions the recipient does not
    # understand is invalid, and we understand none (joserfc also trips over a non-list).
    if "crit" in unverified_header(token):
        raise AttestationInvalid(
            f"{what}_signature", f"{what} JWS lists critical extensions this verifier lacks"
        )
    try:
        signature = jws.deserialize_compact(token, key, registry=jws_registry(algorithms))
    except JoseError as exc:
        raise AttestationInvalid(
            f"{what}_signature", f"{what} JWS did not verify: {exc.error}"
        ) from exc
    try:
        payload = orjson.loads(signature.payload)
    except orjson.JSONDecodeError as exc:
        raise AttestationInvalid("format", f"{what} payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise AttestationInvalid("format", f"{what} payload is not a JSON object")
    return signature.headers(), payload


def check_time_claims(
    payload: Mapping[str, Any], now: int, leeway: int, what: str, prefix: str = ""
) -> None:
    """RFC 7519 §4.1.4/§4.1.5, as §7.1 step 2c asks: ``exp`` and ``nbf`` when present.

    ``prefix`` (``kb_`` for the KB-JWT) keeps the check names of one token apart
    from another's, so a report blames the right stage.
    """
    for name in ("exp", "nbf", "iat"):
        if name in payload and (
            not isinstance(payload[name], int | float) or isinstance(payload[name], bool)
        ):
            raise AttestationInvalid(
                f"{prefix}time_claim_malformed", f"{what} claim {name!r} is not a number"
            )
    if "exp" in payload and now > payload["exp"] + leeway:
        raise AttestationInvalid(f"{prefix}expired", f"{what} expired at {int(payload['exp'])}")
    if "nbf" in payload and now + leeway < payload["nbf"]:
        raise AttestationInvalid(
            f"{prefix}not_yet_valid", f"{what} is not valid before {int(payload['nbf'])}"
        )


def verify(
    text: str,
    resolve_issuer_key: IssuerKeyResolver,
    *,
    now: int,
    key_binding: KeyBindingPolicy = KeyBindingPolicy(),
    leeway_seconds: int = 60,
    progress: Callable[[str], None] | None = None,
) -> Verified:
    """Every check of §7.1 (issuer-signed JWT, Disclosures) and §7.3 (Key Binding).

    ``progress`` hears "signature", "disclosures" and "key_binding" as each
    completes, so a report can say which checks actually ran.
    """
    done = progress or (lambda _stage: None)
    if key_binding.required and (key_binding.audience is None or key_binding.nonce is None):
        raise ValueError("a Key Binding policy that requires KB must name audience and nonce")
    sd_jwt = SdJwt.parse(text)

    # §7.1 step 2: the issuer-signed JWT (algorithm allow-list excludes "none").
    header = unverified_header(sd_jwt.jwt)
    if header.get("alg") not in ISSUER_ALGORITHMS:
        raise AttestationInvalid(
            "alg_not_allowed", f"issuer JWS alg {header.get('alg')!r} not allowed"
        )
    key = resolve_issuer_key(header, _unverified_payload(sd_jwt.jwt))
    header, payload = verify_jws(sd_jwt.jwt, key, ISSUER_ALGORITHMS, "issuer")
    done("signature")
    check_time_claims(payload, now, leeway_seconds, "SD-JWT")
    # §7.1 step 2d: the hash algorithm must be one we support (absent means sha-256, §4.1.1).
    sd_alg = payload.get("_sd_alg", SD_ALG)
    if sd_alg != SD_ALG:
        raise AttestationInvalid("sd_alg_unsupported", f"_sd_alg {sd_alg!r} is not supported")

    claims, disclosed = _process_disclosures(payload, sd_jwt.disclosures)
    done("disclosures")

    # §7.3 step 1 (checked here so a report lists the earlier checks as passed).
    if key_binding.required and sd_jwt.kb_jwt is None:
        raise AttestationInvalid(
            "kb_missing", "Key Binding is required and no KB-JWT was presented"
        )
    kb_claims = None
    if sd_jwt.kb_jwt is not None:
        kb_claims = _verify_key_binding(sd_jwt, payload, key_binding, now)
        done("key_binding")
    return Verified(header, claims, disclosed, kb_claims is not None, kb_claims)


def _process_disclosures(
    payload: dict[str, Any], disclosures: Sequence[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """§7.1 step 3: replace digests by disclosed claims; steps 4-5: each used once."""
    by_digest: dict[str, list[Any]] = {}
    for disclosure in disclosures:
        hashed = digest(disclosure)
        if hashed in by_digest:
            raise AttestationInvalid(
                "disclosure_duplicate", "the same Disclosure is presented twice"
            )
        by_digest[hashed] = _decode_disclosure(disclosure)
    seen: set[str] = set()
    disclosed_names: list[str] = []

    def take(hashed: Any) -> list[Any] | None:
        if not isinstance(hashed, str):
            raise AttestationInvalid("format", "an embedded digest is not a string")
        # §7.1 step 4: a digest may appear only once in the payload and Disclosures.
        if hashed in seen:
            raise AttestationInvalid("digest_duplicate", f"digest {hashed} appears more than once")
        seen.add(hashed)
        return by_digest.get(hashed)  # no match: a decoy or an undisclosed claim

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            result: dict[str, Any] = {}
            for key, value in node.items():
                if key in ("_sd", "_sd_alg"):
                    continue
                result[key] = walk(value)
            embedded = node.get("_sd", [])
            if not isinstance(embedded, list):
                raise AttestationInvalid("format", "_sd is not an array")
            for hashed in embedded:
                found = take(hashed)
                if found is None:
                    continue
                if len(found) != 3:
                    raise AttestationInvalid(
                        "disclosure_malformed", "an object digest refers to an array Disclosure"
                    )
                name = found[1]
                if name in _RESERVED_NAMES:
                    raise AttestationInvalid("claim_name_reserved", f"Disclosure names {name!r}")
                if name in result:
                    raise AttestationInvalid(
                        "claim_name_duplicate", f"claim {name!r} is both plain and disclosed"
                    )
                result[name] = walk(found[2])
                disclosed_names.append(name)
            return result
        if isinstance(node, list):
            items: list[Any] = []
            for item in node:
                if isinstance(item, dict) and set(item) == {"..."}:
                    found = take(item["..."])
                    if found is None:
                        continue
                    if len(found) != 2:
                        raise AttestationInvalid(
                            "disclosure_malformed", "an array digest refers to an object Disclosure"
                        )
                    items.append(walk(found[1]))
                else:
                    items.append(walk(item))
            return items
        return node

    claims = walk(payload)
    # §7.1 step 5: every Disclosure must have been referenced by some digest.
    unreferenced = set(by_digest) - seen
    if unreferenced:
        raise AttestationInvalid(
            "disclosure_unreferenced",
            f"{len(unreferenced)} Disclosure(s) not referenced by any digest in the SD-JWT",
        )
    return claims, tuple(disclosed_names)


def _verify_key_binding(
    sd_jwt: SdJwt, payload: Mapping[str, Any], policy: KeyBindingPolicy, now: int
) -> dict[str, Any]:
    """§7.3 step 5: the KB-JWT, checked against the key confirmed in ``cnf``."""
    assert sd_jwt.kb_jwt is not None
    cnf = payload.get("cnf")
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        raise AttestationInvalid(
            "kb_no_holder_key", "a KB-JWT is present but the SD-JWT has no cnf.jwk"
        )
    kb_header = unverified_header(sd_jwt.kb_jwt)
    if kb_header.get("typ") != KB_TYP:
        raise AttestationInvalid(
            "kb_typ", f"KB-JWT typ is {kb_header.get('typ')!r}, not {KB_TYP!r}"
        )
    if kb_header.get("alg") not in HOLDER_ALGORITHMS:
        raise AttestationInvalid(
            "alg_not_allowed", f"KB-JWT alg {kb_header.get('alg')!r} not allowed"
        )
    try:
        confirmed = holder_key(cnf["jwk"])
    except ValueError as exc:
        raise AttestationInvalid("kb_no_holder_key", str(exc)) from exc
    _, kb = verify_jws(sd_jwt.kb_jwt, confirmed, HOLDER_ALGORITHMS, "kb")
    iat = kb.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise AttestationInvalid("kb_iat", "KB-JWT has no numeric iat")
    if iat > now + policy.leeway_seconds or iat < now - policy.max_age_seconds:
        raise AttestationInvalid(
            "kb_iat", f"KB-JWT iat {iat} is outside the accepted window around {now}"
        )
    if policy.audience is not None and kb.get("aud") != policy.audience:
        raise AttestationInvalid(
            "kb_aud", f"KB-JWT aud {kb.get('aud')!r} is not {policy.audience!r}"
        )
    if policy.nonce is not None and kb.get("nonce") != policy.nonce:
        raise AttestationInvalid(
            "kb_nonce", "KB-JWT nonce does not match the one the verifier issued"
        )
    if kb.get("sd_hash") != digest(sd_jwt.presented):
        raise AttestationInvalid("kb_sd_hash", "KB-JWT sd_hash does not cover the presented SD-JWT")
    check_time_claims(kb, now, policy.leeway_seconds, "KB-JWT", prefix="kb_")
    return kb


def holder_key(jwk: Mapping[str, Any]) -> JWSKey:
    """The holder's public key from ``cnf.jwk`` (RFC 7800 §3.2); ValueError if unusable."""
    if not isinstance(jwk, Mapping) or "d" in jwk:
        raise ValueError("the holder JWK must be a public key object (no 'd')")
    params: KeyParameters = {}
    try:
        if jwk.get("kty") == "EC":
            return ECKey.import_key(dict(jwk), params)
        if jwk.get("kty") == "OKP":
            return OKPKey.import_key(dict(jwk), params)
    except (JoseError, TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"the holder JWK is not a usable public key: {exc}") from exc
    raise ValueError(f"unsupported holder key type {jwk.get('kty')!r}; use EC or OKP")
