"""Token Status List (draft-ietf-oauth-status-list): revocation that receivers can check.

§4: a Status List is a byte array of ``bits``-wide entries; entry ``idx`` lives
in byte ``idx * bits // 8`` starting at the least significant bit. It travels
DEFLATE-compressed in the ZLIB format (RFC 1950) and base64url-encoded as
``{"bits": 1, "lst": "..."}``.
§5: a Status List Token is a JWT with ``typ: statuslist+jwt`` whose ``sub`` is
its own URI, with ``iat``, ``exp``, ``ttl`` and the ``status_list`` claim.
§6: a Referenced Token names its entry as
``{"status": {"status_list": {"idx": i, "uri": "https://..."}}}``.
§7 status values: 0 VALID, 1 INVALID (revoked), 2 SUSPENDED.
"""

from __future__ import annotations

import hmac
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey

from idp.attestations.errors import AttestationInvalid
from idp.attestations.rfc9901 import b64url, b64url_decode, unverified_header, verify_jws
from idp.attestations.signing import AttestationSigner

TYP = "statuslist+jwt"
MEDIA_TYPE = "application/statuslist+jwt"
VALID, INVALID, SUSPENDED = 0, 1, 2
STATUS_NAMES = {VALID: "valid", INVALID: "invalid", SUSPENDED: "suspended"}


@dataclass
class StatusList:
    size: int
    bits: int = 1
    entries: bytearray | None = None

    def __post_init__(self) -> None:
        if self.bits not in (1, 2, 4, 8):
            raise ValueError("bits must be 1, 2, 4 or 8 (§4.1)")
        length = (self.size * self.bits + 7) // 8
        if self.entries is None:
            self.entries = bytearray(length)
        elif len(self.entries) < length:
            raise ValueError("the byte array is shorter than size entries")

    def _locate(self, idx: int) -> tuple[int, int, int]:
        if not 0 <= idx < self.size:
            raise IndexError(f"status index {idx} outside 0..{self.size - 1}")
        position = idx * self.bits
        return position // 8, position % 8, (1 << self.bits) - 1

    def __getitem__(self, idx: int) -> int:
        assert self.entries is not None
        byte, shift, mask = self._locate(idx)
        return (self.entries[byte] >> shift) & mask

    def __setitem__(self, idx: int, status: int) -> None:
        assert self.entries is not None
        byte, shift, mask = self._locate(idx)
        if not 0 <= status <= mask:
            raise ValueError(f"status {status} does not fit in {self.bits} bits")
        self.entries[byte] = (self.entries[byte] & ~(mask << shift) & 0xFF) | (status << shift)

    @classmethod
    def with_statuses(
        cls, size: int, statuses: Iterable[tuple[int, int]], bits: int = 1
    ) -> StatusList:
        status_list = cls(size, bits)
        for idx, status in statuses:
            status_list[idx] = status
        return status_list

    def to_claim(self) -> dict[str, Any]:
        assert self.entries is not None
        return {"bits": self.bits, "lst": b64url(zlib.compress(bytes(self.entries), 9))}

    @classmethod
    def from_claim(cls, claim: Mapping[str, Any]) -> StatusList:
        try:
            bits = int(claim["bits"])
            entries = bytearray(zlib.decompress(b64url_decode(claim["lst"])))
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise AttestationInvalid("status_list_malformed", f"status_list claim: {exc}") from exc
        if bits not in (1, 2, 4, 8):
            raise AttestationInvalid("status_list_malformed", f"status_list bits is {bits}")
        return cls(len(entries) * 8 // bits, bits, entries)


def scatter(position: int, size: int, key: bytes) -> int:
    """The index for the ``position``-th entry handed out: a keyed permutation of 0..size-1.

    Sequential indices would tell anyone comparing two attestations which was
    issued first and how many came between (the draft's privacy considerations
    ask issuers to avoid that). A four-round Feistel network over the smallest
    even number of bits that covers ``size``, with HMAC-SHA256 rounds, is a
    bijection; cycle-walking keeps it inside ``size``.
    """
    if not 0 <= position < size:
        raise ValueError(f"position {position} outside 0..{size - 1}")
    half = max(1, ((size - 1).bit_length() + 1) // 2)
    mask = (1 << half) - 1
    value = position
    while True:
        left, right = value >> half, value & mask
        for round_number in range(4):
            mac = hmac.new(key, bytes((round_number,)) + right.to_bytes(4, "big"), "sha256")
            left, right = right, left ^ (int.from_bytes(mac.digest()[:4], "big") & mask)
        value = (left << half) | right
        if value < size:
            return value


def sign_status_list_token(
    signer: AttestationSigner, uri: str, status_list: StatusList, *, now: int, ttl: int
) -> str:
    """§5.1: the list, signed with the attestation key so receivers trust it like the tokens."""
    return signer.sign(
        TYP,
        {
            "sub": uri,
            "iat": now,
            "exp": now + 2 * ttl,
            "ttl": ttl,
            "status_list": status_list.to_claim(),
        },
    )


def reference(claims: Mapping[str, Any]) -> tuple[int, str] | None:
    """The (idx, uri) a Referenced Token points to, or None when it has no status (§6.1)."""
    status = claims.get("status")
    if status is None:
        return None
    try:
        entry = status["status_list"]
        idx, uri = entry["idx"], entry["uri"]
    except (KeyError, TypeError) as exc:
        raise AttestationInvalid("status_malformed", f"status claim lacks {exc}") from exc
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0 or not isinstance(uri, str):
        raise AttestationInvalid("status_malformed", "status_list idx/uri have the wrong types")
    return idx, uri


def check_status(
    claims: Mapping[str, Any],
    fetch: Callable[[str], str],
    resolve_key: Callable[[dict[str, Any]], ECKey],
    *,
    now: int,
) -> int:
    """§8.3: fetch the Status List Token, validate it, return the entry's status value."""
    ref = reference(claims)
    if ref is None:
        raise AttestationInvalid("status_missing", "the attestation names no status list")
    idx, uri = ref
    token = fetch(uri).strip()
    header = unverified_header(token)
    if header.get("typ") != TYP:
        raise AttestationInvalid("status_list_malformed", f"typ is {header.get('typ')!r}")
    _, payload = verify_jws(token, resolve_key(header), ("ES256",), "status_list")
    if payload.get("sub") != uri:
        raise AttestationInvalid(
            "status_list_malformed", "the Status List Token's sub is not its URI"
        )
    exp = payload.get("exp")
    if isinstance(exp, int) and now > exp:
        raise AttestationInvalid("status_list_expired", "the Status List Token has expired")
    status_list = StatusList.from_claim(payload.get("status_list") or {})
    try:
        return status_list[idx]
    except IndexError as exc:
        raise AttestationInvalid("status_malformed", str(exc)) from exc
