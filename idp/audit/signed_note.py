"""Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint's text is::

    <origin>
    <tree size, decimal>
    <root hash, standard base64>
    time <signing time, RFC 3339 UTC>

followed by a blank line and one signature line per signer::

    — <key name> <base64(key id || signature)>

The log signs with ECDSA P-256 over SHA-256, the signature DER-encoded (as
Sigstore's Rekor does); the key id is the first four bytes of SHA-256 of the
key's DER SubjectPublicKeyInfo. The signature covers the text including its
final newline. The ``time`` line is a tlog-checkpoint extension line.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_PREFIX = "\u2014 "


class NoteError(ValueError):
    """A note that is malformed or whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    signed_at: datetime

    def text(self) -> str:
        if "\n" in self.origin or not self.origin:
            raise NoteError("the origin must be one non-empty line")
        stamp = self.signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        root = base64.b64encode(self.root_hash).decode()
        return f"{self.origin}\n{self.tree_size}\n{root}\ntime {stamp}\n"


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()[:4]


def sign(text: str, name: str, private_key: ec.EllipticCurvePrivateKey) -> str:
    """The signed note: ``text``, a blank line, and this key's signature line."""
    signature = private_key.sign(text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    blob = base64.b64encode(key_id(private_key.public_key()) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {blob}\n"


def open_checkpoint(note: str, name: str, public_key: ec.EllipticCurvePublicKey) -> Checkpoint:
    """Verify the note's signature by ``public_key`` under ``name`` and parse its text."""
    text, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise NoteError("no blank line between the note text and its signatures")
    text += "\n"
    wanted = key_id(public_key)
    for line in signatures.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line[:40]!r}")
        signer, _, blob = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError as exc:
            raise NoteError("signature is not base64") from exc
        if signer != name or raw[:4] != wanted:
            continue  # another signer (a witness, say): not ours to check
        try:
            public_key.verify(raw[4:], text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise NoteError(f"the signature of {name} does not verify") from exc
        checkpoint = parse_checkpoint(text)
        # c2sp.org/tlog-checkpoint: the origin line names the log; a note signed for
        # another log by the same key is not this log's checkpoint.
        if checkpoint.origin != name:
            raise NoteError(f"the checkpoint is for the log {checkpoint.origin!r}, not {name!r}")
        return checkpoint
    raise NoteError(f"the note carries no signature by {name} (key id {wanted.hex()})")


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 5 or lines[-1] != "":
        raise NoteError("a checkpoint has origin, size, root hash and time lines")
    origin, size, root, stamp = lines[0], lines[1], lines[2], lines[3]
    if not (size.isascii() and size.isdigit()) or (size != "0" and size.startswith("0")):
        raise NoteError(f"tree size {size!r} is not a decimal number")
    try:
        root_hash = base64.b64decode(root, validate=True)
        signed_at = datetime.strptime(stamp, "time %Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise NoteError(f"malformed checkpoint line: {exc}") from exc
    if len(root_hash) != 32:
        raise NoteError("the root hash is not 32 bytes")
    return Checkpoint(origin, int(size), root_hash, signed_at)
