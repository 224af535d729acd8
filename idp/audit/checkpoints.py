"""Signed checkpoints of the audit log: at an interval and on demand.

A checkpoint commits the log to (tree size, root hash, time) under the log's
key (:mod:`idp.audit.signed_note` for the format). Each one sequences pending
entries first, so it covers everything committed before it was asked for.
Auditors keep checkpoints; a later export must extend every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session

from idp.audit import signed_note
from idp.audit.sequencer import lock_head, sequence_pending
from idp.audit.signing_key import signing_key
from idp.storage import audit_keys
from idp.storage.audit_log import AuditCheckpoint
from idp.storage.engine import Database

DEFAULT_INTERVAL = timedelta(minutes=5)


def log_origin(issuer: str) -> str:
    """The checkpoint origin (and signer name): the issuer's host plus ``/audit``."""
    return f"{urlsplit(issuer).netloc or issuer}/audit"


@dataclass(frozen=True)
class CheckpointRecord:
    tree_size: int
    root_hash: bytes
    signed_at: datetime
    key_id: str
    note: str

    def to_json(self) -> dict[str, Any]:
        """The form auditors keep (``hoviyat audit verify --checkpoint FILE``)."""
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "signed_at": self.signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "key_id": self.key_id,
            "note": self.note,
        }


def _record(row: AuditCheckpoint) -> CheckpointRecord:
    return CheckpointRecord(
        row.tree_size, bytes(row.root_hash), row.signed_at, row.key_id, row.note
    )


def make_checkpoint(db: Database, key_encryption_key: bytes, origin: str) -> CheckpointRecord:
    sequence_pending(db)
    with db.session() as session:
        head = lock_head(session)
        key, private_key = signing_key(session, key_encryption_key)
        # Whole seconds: the note's time line has second precision.
        now = datetime.now(UTC).replace(microsecond=0)
        checkpoint = signed_note.Checkpoint(origin, head.tree_size, head.root_hash, now)
        note = signed_note.sign(checkpoint.text(), origin, private_key)
        row = audit_keys.add_checkpoint(
            session,
            AuditCheckpoint(
                tree_size=head.tree_size,
                root_hash=head.root_hash,
                signed_at=now,
                key_id=key.key_id,
                note=note,
            ),
        )
    return _record(row)


def latest_checkpoint(session: Session) -> CheckpointRecord | None:
    row = audit_keys.latest_checkpoint(session)
    return _record(row) if row else None


def all_checkpoints(session: Session) -> list[CheckpointRecord]:
    return [_record(row) for row in audit_keys.all_checkpoints(session)]


def checkpoint_if_due(
    db: Database, key_encryption_key: bytes, origin: str, interval: timedelta = DEFAULT_INTERVAL
) -> CheckpointRecord | None:
    """The interval rule: sign when the last checkpoint is older than ``interval``."""
    with db.session() as session:
        latest = latest_checkpoint(session)
    if latest is not None:
        if datetime.now(UTC) - latest.signed_at < interval:
            return None
    return make_checkpoint(db, key_encryption_key, origin)
