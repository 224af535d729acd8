"""DPoP: sender-constrained tokens by proof of possession (RFC 9449).

A client holding a key pair sends, with each request, a short JWT signed by
that key (the proof) that names the request's method and URL. At /token the
access token is bound to the key's RFC 7638 thumbprint (``cnf.jkt``, §6.1);
where the token is used, the same key must prove possession again, with
``ath`` tying the proof to that token (§7). A stolen token, or a stolen
proof, is useless without the private key.

The checks here are the stateless part of §4.3; the ``jti`` of an accepted
proof is spent in the database (:mod:`idp.storage.dpop_proofs`), so a proof
is accepted once across workers and hosts.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwk, jws
from joserfc.errors import JoseError
from joserfc.jws import JWSAlgModel
from joserfc.util import urlsafe_b64decode
from sqlalchemy import Connection
from sqlmodel import Session

from idp.audit.log import AuditEvent, insert_events
from idp.settings import Settings
from idp.storage import dpop_proofs
from idp.storage.group_commit import BulkKind, BulkWrite, GroupCommitter

PROOF_TYPE = "dpop+jwt"
TOKEN_TYPE = "DPoP"  # noqa: S105 - the token_type name (§5), not a secret
# §4.3 step 5: asymmetric algorithms only; never "none" nor a MAC, whose "key"
# would be the public JWK the proof itself carries.
ALGORITHMS = ("ES256", "PS256", "EdDSA")
# RFC 7517/7518 private members: a proof carrying one has leaked its key (§4.3 step 7).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES = {"EC": jwk.ECKey, "RSA": jwk.RSAKey, "OKP": jwk.OKPKey}
_MAX_JTI = 255
# joserfc's default allows 512 bytes of header: too few for an RSA key's jwk.
# 2048 holds an RSA 4096 public key and bounds what is parsed.
_REGISTRY = jws.JWSRegistry(algorithms=ALGORITHMS)
_REGISTRY.max_header_length = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidProof(Exception):
    """The DPoP proof is missing, malformed or does not fit the request (§5, §7.1)."""

    error = "invalid_dpop_proof"


class NonceRequired(InvalidProof):
    """§8, §9: the proof must carry the server's current nonce, sent back with the error."""

    error = "use_dpop_nonce"

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce


class ServerNonces:
    """Stateless server nonces (§8): an HMAC of the current time slot under a server
    secret, so every worker and host issues and accepts the same ones without
    storing them. The current and the previous slot's nonce are accepted, so a
    nonce lives between one and two ``lifetime``s."""

    def __init__(self, secret: bytes, lifetime: int) -> None:
        # Its own key: the secret it comes from serves another purpose.
        self._key = hmac.new(secret, b"hoviyat dpop nonce", hashlib.sha256).digest()
        self._lifetime = lifetime

    def _of(self, slot: int) -> str:
        mac = hmac.new(self._key, str(slot).encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def current(self, now: float | None = None) -> str:
        return self._of(int((time.time() if now is None else now) // self._lifetime))

    def accepts(self, value: object, now: float | None = None) -> bool:
        if not isinstance(value, str):
            return False
        slot = int((time.time() if now is None else now) // self._lifetime)
        return any(hmac.compare_digest(value, self._of(s)) for s in (slot, slot - 1))


@dataclass(frozen=True)
class Proof:
    """An accepted proof: the key's thumbprint and what makes it single use."""

    jkt: str
    jti: str
    iat: int


def token_hash(access_token: str) -> str:
    """§4.2 ``ath``: base64url of the SHA-256 of the access token's ASCII."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def confirmation(jkt: str | None) -> dict[str, Any]:
    """The access token's ``cnf`` claim for a proven key (§6.1), or nothing."""
    return {"cnf": {"jkt": jkt}} if jkt is not None else {}


def bound_key(claims: Mapping[str, Any]) -> str | None:
    """The thumbprint an access token is bound to (``cnf.jkt``), None for a bearer token."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


def proof_header(headers: Any) -> str | None:
    """The request's one DPoP header (§4.3 step 1); None when there is none."""
    values = headers.getlist("dpop")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidProof("send exactly one DPoP header")
    value = str(values[0]).strip()
    if not value:
        raise InvalidProof("the DPoP header is empty")
    return value


@functools.lru_cache(maxsize=256)  # a client names the same few URLs in every proof
def _normalised(url: str) -> str | None:
    """Scheme and host lower-cased, default port dropped, no query or fragment (§4.3 step 9,
    RFC 3986 §6.2.2-6.2.3); None when it is not an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


def server_nonces(settings: Settings, secret: bytes) -> ServerNonces | None:
    """The nonces proofs must carry, or None when the deployment requires none (§8)."""
    if not settings.dpop_require_nonce:
        return None
    return ServerNonces(secret, settings.dpop_nonce_lifetime_seconds)


def request_path(scope: Mapping[str, Any]) -> str:
    """``request.url.path`` without building the URL object (a tenth of a proof's check):
    the ASGI path with ``?``, ``#`` and ``\\`` escaped as Starlette's URL escapes them."""
    path: str = scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def request_url(issuer: str, path: str) -> str:
    """The URL the client called, as the public issuer URL names this server (behind
    the reverse proxy the request's own Host and scheme are the proxy's business)."""
    return _normalised(issuer.rstrip("/") + path) or path


def _key_of(header: Mapping[str, Any]) -> jwk.Key:
    member = header.get("jwk")
    if not isinstance(member, dict):
        raise InvalidProof("the proof's header has no jwk")
    # §4.3 step 7: the public key only.
    if _PRIVATE_MEMBERS & member.keys():
        raise InvalidProof("the proof's jwk carries a private key")
    key_type = _KEY_TYPES.get(str(member.get("kty")))
    if key_type is None:
        raise InvalidProof("the proof's jwk must be an EC, RSA or OKP public key")
    try:
        key: jwk.Key = key_type.import_key(member)  # type: ignore[attr-defined]
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidProof("the proof's jwk is not a usable public key") from None
    if key.is_private:
        raise InvalidProof("the proof's jwk carries a private key")
    # RFC 7518 §3.5: PS256 keys of 2048 bits or more.
    if isinstance(key, jwk.RSAKey) and key.raw_value.key_size < 2048:
        raise InvalidProof("the proof's RSA key is shorter than 2048 bits")
    return key


@dataclass(frozen=True)
class _Signer:
    """What a proof's protected header settles: its algorithm, its public key and that
    key's RFC 7638 thumbprint."""

    algorithm: JWSAlgModel
    key: jwk.Key
    jkt: str


def _decoded(segment: bytes) -> bytes:
    # joserfc's decoder: strict base64url, no padding, no stray characters.
    return urlsafe_b64decode(segment)


@functools.lru_cache(maxsize=1024)
def _signer(header_segment: bytes) -> _Signer:
    """§4.3 steps 4, 5 and 7 for one protected header, as its base64url bytes.

    A client sends the same header (typ, alg, its jwk) with every proof, and
    importing its key (the curve point checked) and hashing its thumbprint cost
    more than the signature check; so the outcome is kept per exact header
    bytes, which are all it depends on. Only a header that passes is kept: a
    refused one raises again each time. The signature is still checked on every
    proof, against this key. Bounded: a client with a new key each time only
    evicts older entries.
    """
    try:
        header = json.loads(_decoded(header_segment))
    except (ValueError, UnicodeError, TypeError):
        raise InvalidProof("the DPoP proof is not a compact JWS") from None
    if not isinstance(header, dict):
        raise InvalidProof("the DPoP proof is malformed")
    # Step 4: explicitly typed.
    if header.get("typ") != PROOF_TYPE:
        raise InvalidProof(f"the DPoP proof's typ must be {PROOF_TYPE}")
    # Step 5: an asymmetric algorithm we support (none and HS* refused here).
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise InvalidProof(f"the DPoP proof's alg must be one of {list(ALGORITHMS)}")
    # RFC 7515 §4.1.11: we understand no critical extension; nor an unencoded
    # payload (RFC 7797's b64), which would change what was signed.
    if "crit" in header or "b64" in header:
        raise InvalidProof("the DPoP proof has critical header parameters we do not support")
    try:
        _REGISTRY.check_header(header)  # RFC 7515 §4.1: registered members well typed
    except (JoseError, ValueError, TypeError):
        raise InvalidProof("the DPoP proof's header is malformed") from None
    key = _key_of(header)
    algorithm = _REGISTRY.get_alg(str(alg))
    # The key must suit the algorithm (an RSA key for ES256 is refused, not tried).
    try:
        algorithm.check_key(key)
    except (JoseError, ValueError, TypeError):
        raise InvalidProof("the proof's jwk does not suit its alg") from None
    return _Signer(algorithm=algorithm, key=key, jkt=key.thumbprint())


def _parts(proof: str) -> tuple[bytes, bytes, dict[str, Any], bytes]:
    """Step 2: a JWS compact serialisation (RFC 7515 §7.1), within the registry's
    sizes: header segment, payload segment, the claims, the signature."""
    try:
        header, payload, signature = proof.encode("ascii").split(b".")
    except (UnicodeError, ValueError):
        raise InvalidProof("the DPoP proof is not a compact JWS") from None
    if (
        len(header) > _REGISTRY.max_header_length
        or len(payload) > _REGISTRY.max_payload_length
        or len(signature) > _REGISTRY.max_signature_length
    ):
        raise InvalidProof("the DPoP proof is too large")
    try:
        claims = json.loads(_decoded(payload))
        raw_signature = _decoded(signature)
    except (ValueError, UnicodeError, TypeError):
        raise InvalidProof("the DPoP proof is not a compact JWS") from None
    if not isinstance(claims, dict):
        raise InvalidProof("the DPoP proof is malformed")
    return header, payload, claims, raw_signature


def verify(
    proof: str,
    *,
    method: str,
    url: str,
    window: int,
    access_token: str | None = None,
    nonces: ServerNonces | None = None,
    now: float | None = None,
) -> Proof:
    """RFC 9449 §4.3 steps 2-12 but the replay check: raises :class:`InvalidProof`.

    ``url`` is the normalised request URL (:func:`request_url`); ``window`` the
    seconds ``iat`` may lie from now either way; ``nonces``, when the server
    requires a nonce (§8), the ones it accepts.
    """
    header, payload, claims, signature = _parts(proof)
    # Steps 4, 5, 7: typ, alg and the public key, settled by the header alone.
    signer = _signer(header)
    # Step 6: the signature verifies with the key the header carries.
    try:
        valid = signer.algorithm.verify(header + b"." + payload, signature, signer.key)
    except (JoseError, ValueError, TypeError):
        valid = False
    if not valid:
        raise InvalidProof("the DPoP proof's signature does not verify with its jwk")
    # Step 3: the required claims.
    jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
        raise InvalidProof("the DPoP proof needs a jti")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidProof("the DPoP proof's iat must be a number of seconds")
    # Step 8: the method of this request.
    if htm != method:
        raise InvalidProof("the DPoP proof was made for another HTTP method (htm)")
    # Step 9: this URL, without query and fragment.
    if not isinstance(htu, str) or _normalised(htu) != url:
        raise InvalidProof("the DPoP proof was made for another URL (htu)")
    moment = time.time() if now is None else now
    # Step 10: the server's nonce, when it requires one (§8, §9).
    if nonces is not None and not nonces.accepts(claims.get("nonce"), moment):
        raise NonceRequired("the DPoP proof must carry the nonce in DPoP-Nonce", nonces.current())
    # Step 11: created recently (within the window, either way for clock skew).
    if abs(moment - iat) > window:
        raise InvalidProof(f"the DPoP proof's iat is more than {window} s from now")
    # Step 12 (§7): bound to the access token presented with it.
    if access_token is not None:
        if claims.get("ath") != token_hash(access_token):
            raise InvalidProof("the DPoP proof's ath does not match the access token")
    return Proof(jkt=signer.jkt, jti=jti, iat=iat)


def _expiry(proof: Proof, window: int) -> datetime:
    """Until when a proof's ``jti`` must be remembered: past it, its ``iat`` is refused."""
    return datetime.fromtimestamp(proof.iat + window + 1, UTC)


def spend(session: Session, proof: Proof, window: int) -> None:
    """§11.1: a proof is accepted once; its ``jti`` is kept as long as its ``iat``
    could still pass. One INSERT on a primary key, so of two workers or hosts
    presenting the same proof exactly one wins."""
    if not dpop_proofs.spend(session, proof.jkt, proof.jti, _expiry(proof, window)):
        raise InvalidProof("the DPoP proof was used before (jti replay)")


_Spent = tuple[dict[str, Any], AuditEvent | None]  # a proof's row, and its audit entry if any


def _record(connection: Connection, items: Sequence[_Spent]) -> None:
    dpop_proofs.spend_many(connection, [row for row, _ in items])
    events = [event for _, event in items if event is not None]
    if events:
        insert_events(connection, events)


#: Proofs spent by the group committer (§11.1): a batch's ``jti`` rows in one multi-row
#: INSERT, no SAVEPOINT each, each with the audit entry of what it was for, if any, so
#: the two commit together; a replayed proof fails its caller alone.
SPENDING: BulkKind[_Spent] = BulkKind("DPoP proof", _record)


def spending(proof: Proof, window: int, event: AuditEvent | None = None) -> BulkWrite[_Spent]:
    """The write that spends ``proof`` (and appends ``event``) in a group-committed batch."""
    return SPENDING((dpop_proofs.row(proof.jkt, proof.jti, _expiry(proof, window)), event))


async def spend_soon(
    committer: GroupCommitter, proof: Proof, window: int, event: AuditEvent | None = None
) -> None:
    """Spend ``proof`` through ``committer`` (with ``event``, committed together); a proof
    spent before raises :class:`InvalidProof` and leaves no audit entry."""
    try:
        await committer.run(spending(proof, window, event))
    except dpop_proofs.ProofReplayed:
        raise InvalidProof("the DPoP proof was used before (jti replay)") from None


def spend_now(committer: GroupCommitter, proof: Proof, window: int) -> None:
    """:func:`spend_soon` for code that runs in a worker thread (it waits for the commit)."""
    try:
        committer.call(spending(proof, window))
    except dpop_proofs.ProofReplayed:
        raise InvalidProof("the DPoP proof was used before (jti replay)") from None


def metadata(_settings: Settings, _auth_methods: Sequence[str]) -> dict[str, Any]:
    """The discovery member (§5.1): the algorithms a proof may be signed with."""
    return {"dpop_signing_alg_values_supported": list(ALGORITHMS)}


# --- where the token is used (§7) ---------------------------------------------------------------


class TokenRefused(Exception):
    """The access token may not be used as presented (§7.1, §7.2): ``error`` is the
    WWW-Authenticate error code."""

    def __init__(self, error: str, description: str, nonce: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.nonce = nonce  # §9: the nonce to use, sent in DPoP-Nonce


def challenge(error: str | None = None, description: str | None = None) -> str:
    """A ``WWW-Authenticate: DPoP`` challenge (§7.1) naming the algorithms we accept."""
    parts = []
    if error is not None:
        parts.append(f'error="{error}"')
    if description is not None:
        safe = description.replace("\\", "").replace('"', "'")
        parts.append(f'error_description="{safe}"')
    parts.append(f'algs="{" ".join(ALGORITHMS)}"')
    return "DPoP " + ", ".join(parts)


def confirm(
    scheme: str,
    token: str,
    claims: Mapping[str, Any],
    headers: Any,
    *,
    method: str,
    url: str,
    window: int,
    nonces: ServerNonces | None = None,
) -> Proof | None:
    """Whether a verified access token may be used as presented; the proof to spend.

    ``scheme`` is the lower-cased Authorization scheme, ``bearer`` or ``dpop``. A
    bearer token presented as Bearer passes untouched; a DPoP-bound one must come
    as ``Authorization: DPoP`` with a proof by the key it is bound to (§7.1), made
    for this request and this token (``ath``); as Bearer it is refused (§7.2).
    """
    jkt = bound_key(claims)
    if scheme == "bearer":
        if jkt is not None:
            raise TokenRefused(
                "invalid_token",
                "this access token is DPoP-bound: present it as 'Authorization: DPoP' with a proof",
            )
        return None
    if jkt is None:
        raise TokenRefused("invalid_token", "this access token is not DPoP-bound: use Bearer")
    try:
        value = proof_header(headers)
        if value is None:
            raise InvalidProof("a DPoP-bound access token needs a DPoP proof")
        proof = verify(
            value, method=method, url=url, window=window, access_token=token, nonces=nonces
        )
    except NonceRequired as exc:
        raise TokenRefused(exc.error, str(exc), exc.nonce) from None
    except InvalidProof as exc:
        raise TokenRefused(exc.error, str(exc)) from None
    if proof.jkt != jkt:
        raise TokenRefused(
            "invalid_token", "the DPoP proof's key is not the one the token is bound to"
        )
    return proof
