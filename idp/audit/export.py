"""Exporting the audit log as JSON lines an auditor verifies offline.

Line 1, the header::

    {"type": "header", "format": "hoviyat-audit-export", "version": 1,
     "origin": ..., "tree_size": n, "complete": true|false,
     "entry_encoding": "RFC 8785 JCS of the version 1 entry (idp.audit.canonical)",
     "leaf_hash": "RFC 9162 SHA-256(0x00 || entry)",
     "checkpoint_format": "C2SP signed note, ECDSA P-256, key id SHA-256(SPKI)[:4]",
     "log_keys": [{"key_id", "public_key_pem", "certificate_chain_pem"}], ...}

then every checkpoint the log has signed up to the latest (one made for the
export, ``tree_size`` n), oldest first::

    {"type": "checkpoint", "tree_size", "root_hash", "signed_at", "key_id", "note",
     "consistency_proof": [hex, ...]}  (filtered exports: RFC 9162 proof to size n)

then the entries in leaf order::

    {"type": "entry", "leaf_index": i, "leaf_hash": "<hex as the log recorded it>",
     "entry": {...version 1 entry...}, "inclusion_proof": [hex, ...]}

A complete export holds leaves 0..n-1 (the verifier rebuilds the tree); a
filtered one carries an inclusion proof to the latest checkpoint per entry.
``leaf_hash`` is what the sequencer stored: where it differs from the entry's
own hash, the row changed after it was logged, and the verifier says which.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlmodel import Session

from idp.audit import tree
from idp.audit.canonical import row_document
from idp.audit.checkpoints import all_checkpoints, make_checkpoint
from idp.audit.log import AuditEvent, append
from idp.audit.search import AuditQuery, entry_filter
from idp.audit.sequencer import read_head
from idp.audit.signing_key import published_keys
from idp.storage.audit_entries import entries_with_leaf_hashes
from idp.storage.engine import Database
from idp.tracking import new_tracking_code

FORMAT = "hoviyat-audit-export"
VERSION = 1


def _line(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value) + b"\n"


def export_lines(
    db: Database,
    *,
    key_encryption_key: bytes,
    pepper: bytes,
    origin: str,
    actor_type: str,
    actor_id: str | None,
    query: AuditQuery | None = None,
) -> Iterator[bytes]:
    """Record the export, sign a checkpoint covering it, then yield the export's lines."""
    with db.session() as session:
        append(
            session,
            AuditEvent(
                tracking_code=new_tracking_code(),
                event_type="audit_exported",
                actor_type=actor_type,
                actor_id=actor_id,
                outcome="success",
                detail={"filtered": query is not None},
            ),
        )
    latest = make_checkpoint(db, key_encryption_key, origin)
    size = latest.tree_size
    with db.session() as session:
        keys = published_keys(session)
        checkpoints = [c for c in all_checkpoints(session) if c.tree_size <= size]
        # A filtered export cannot rebuild the tree: each checkpoint carries its
        # RFC 9162 §2.1.4 consistency proof to the head instead.
        proofs = (
            [_consistency(session, c.tree_size, size) for c in checkpoints]
            if query is not None
            else []
        )
    yield _line(
        {
            "type": "header",
            "format": FORMAT,
            "version": VERSION,
            "origin": origin,
            "tree_size": size,
            "complete": query is None,
            "exported_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "entry_encoding": "RFC 8785 JCS of the version 1 entry (idp.audit.canonical)",
            "leaf_hash": "RFC 9162 SHA-256(0x00 || entry)",
            "checkpoint_format": "C2SP signed note, ECDSA P-256 SHA-256, key id SHA-256(SPKI)[:4]",
            "log_keys": [
                {
                    "key_id": key.key_id,
                    "public_key_pem": key.public_key_pem,
                    "certificate_chain_pem": key.certificate_chain_pem,
                }
                for key in keys
            ],
        }
    )
    for number, checkpoint in enumerate(checkpoints):
        line = {"type": "checkpoint", **checkpoint.to_json()}
        if proofs:
            line["consistency_proof"] = proofs[number]
        yield _line(line)
    yield from _entry_lines(db, pepper, size, query)


def _entry_lines(
    db: Database, pepper: bytes, size: int, query: AuditQuery | None
) -> Iterator[bytes]:
    where = entry_filter(pepper, query) if query is not None else None
    with db.session() as session:
        current = read_head(session).tree_size
        for row in entries_with_leaf_hashes(session, size, where):
            document = row_document(row, row.leaf_index)
            line: dict[str, Any] = {
                "type": "entry",
                "leaf_index": row.leaf_index,
                "leaf_hash": bytes(row.stored_leaf_hash).hex() if row.stored_leaf_hash else None,
                "entry": document,
            }
            if query is not None:
                line["inclusion_proof"] = _proof(session, row.leaf_index, size, current)
            yield _line(line)


def _consistency(session: Session, old_size: int, size: int) -> list[str]:
    if old_size in (0, size):
        return []
    # ``size`` is a signed head, so the stored tree has reached it.
    return [h.hex() for h in tree.consistency_proof(session, old_size, size, size)]


def _proof(session: Session, index: int, size: int, current: int) -> list[str]:
    return [h.hex() for h in tree.inclusion_proof(session, index, size, current)]
