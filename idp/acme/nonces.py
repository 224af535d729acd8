"""``Replay-Nonce`` values (RFC 8555 §6.5), single use across workers and hosts.

A nonce is ``base64url(random(16) || expiry(8, big-endian seconds) || MAC(16))``,
the MAC an HMAC-SHA256 under a key derived from the server secrets. Issuing
one (newNonce, every response) writes nothing, and every worker and host
accepts every other's nonces. A nonce is spent by an INSERT of its random
part into a table with a unique key (:mod:`idp.storage.acme_nonces`): the
second use fails in the database, whichever process it reaches. Rows of
expired nonces are swept now and then; an expired nonce is refused by its
expiry before the table is asked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session

from idp import randomness
from idp.acme.problems import AcmeProblem
from idp.secrets import ServerSecrets
from idp.storage import acme_nonces

_RANDOM_BYTES = 16
_MAC_BYTES = 16
_RAW_BYTES = _RANDOM_BYTES + 8 + _MAC_BYTES
_ENCODED_LENGTH = 54  # base64url of 40 bytes, unpadded
_PURPOSE = "acme nonce"
# One spend in this many also sweeps expired rows: no per-process state, and
# the sweep's cost is spread thin.
_PRUNE_BITS = 6  # one in 64


@dataclass(frozen=True)
class Nonce:
    """A nonce whose MAC and expiry are good, not yet known to be unspent."""

    nonce_id: str  # base64url of the random part: the spent-nonce table's key
    expires_at: datetime


class Nonces:
    """Issues and checks the nonces of one service (every worker builds the same)."""

    def __init__(self, secrets_: ServerSecrets, lifetime_seconds: int) -> None:
        self._key = secrets_.derived_key(_PURPOSE)
        self._lifetime = lifetime_seconds

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def new(self, now: float | None = None) -> str:
        expiry = int(time.time() if now is None else now) + self._lifetime
        # Public values, not secrets: drawn from the OS in blocks (idp.randomness), so
        # issuing one does not let go of the GIL for a system call.
        body = randomness.token_bytes(_RANDOM_BYTES) + struct.pack(">Q", expiry)
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def check(self, value: object, now: float | None = None) -> Nonce:
        """The nonce in ``value`` if this server issued it and it has not expired (§6.5.2)."""
        if not isinstance(value, str) or len(value) != _ENCODED_LENGTH:
            raise bad_nonce("the nonce is not one this server issued")
        try:
            raw = base64.urlsafe_b64decode(value + "==")
        except (binascii.Error, ValueError):
            raise bad_nonce("the nonce is not base64url") from None
        # A non-canonical spelling of the same bytes would be a second nonce.
        if len(raw) != _RAW_BYTES or _encode(raw) != value:
            raise bad_nonce("the nonce is not one this server issued")
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise bad_nonce("the nonce is not one this server issued")
        (expiry,) = struct.unpack(">Q", body[_RANDOM_BYTES:])
        if expiry <= (time.time() if now is None else now):
            raise bad_nonce("the nonce has expired; use a fresh one from newNonce")
        return Nonce(
            nonce_id=_encode(body[:_RANDOM_BYTES]),
            expires_at=datetime.fromtimestamp(expiry, UTC),
        )


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def bad_nonce(detail: str) -> AcmeProblem:
    return AcmeProblem("badNonce", detail, 400)


def spend(session: Session, nonce: Nonce) -> None:
    """Spend ``nonce`` in the caller's transaction; a second use is ``badNonce`` (§6.5.2)."""
    if randomness.randbits(_PRUNE_BITS) == 0:
        acme_nonces.prune(session, datetime.now(UTC))
    if not acme_nonces.spend(session, nonce.nonce_id, nonce.expires_at):
        raise bad_nonce("the nonce has been used already; use the fresh one in this answer")
