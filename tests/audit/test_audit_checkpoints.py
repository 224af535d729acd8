"""Checkpoints: C2SP signed-note format, signature checks, the interval rule, one key per log."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from audit_helpers import append_events
from cryptography.hazmat.primitives.asymmetric import ec

from idp.audit import signed_note
from idp.audit.checkpoints import checkpoint_if_due, log_origin, make_checkpoint
from idp.audit.signing_key import published_keys
from idp.storage.audit_log import AuditSigningKey
from idp.storage.engine import Database

KEK = b"k" * 32
ORIGIN = log_origin("https://id.hoviyat.test")


def test_checkpoint_is_a_c2sp_note_that_verifies_only_under_the_log_key(db: Database) -> None:
    append_events(db, 3)
    record = make_checkpoint(db, KEK, ORIGIN)
    assert ORIGIN == "id.hoviyat.test/audit"
    text, _, signature = record.note.partition("\n\n")
    lines = text.split("\n")
    assert lines[:3] == [ORIGIN, "3", base64.b64encode(record.root_hash).decode()]
    assert lines[3].startswith("time ")
    assert signature.startswith(f"\u2014 {ORIGIN} ")
    with db.session() as session:
        (key,) = published_keys(session)
    opened = signed_note.open_checkpoint(record.note, ORIGIN, key.public_key)
    assert (opened.tree_size, opened.root_hash) == (3, record.root_hash)

    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(signed_note.NoteError, match="no signature"):
        signed_note.open_checkpoint(record.note, ORIGIN, stranger)
    forged = record.note.replace("\n3\n", "\n4\n", 1)
    with pytest.raises(signed_note.NoteError, match="does not verify"):
        signed_note.open_checkpoint(forged, ORIGIN, key.public_key)


def test_interval_rule_and_a_single_key(db: Database) -> None:
    first = checkpoint_if_due(db, KEK, ORIGIN, interval=timedelta(hours=1))
    assert first is not None and first.tree_size == 0
    append_events(db, 2)
    assert checkpoint_if_due(db, KEK, ORIGIN, interval=timedelta(hours=1)) is None
    due = checkpoint_if_due(db, KEK, ORIGIN, interval=timedelta(0))
    assert due is not None and due.tree_size == 2 and due.key_id == first.key_id
    with db.session() as session:
        assert len(session.query(AuditSigningKey).all()) == 1


def test_the_key_is_encrypted_at_rest(db: Database) -> None:
    make_checkpoint(db, KEK, ORIGIN)
    with db.session() as session:
        row = session.query(AuditSigningKey).one()
    assert b"PRIVATE" not in row.private_key_encrypted
    with pytest.raises(RuntimeError, match="does not decrypt"):
        make_checkpoint(db, b"x" * 32, ORIGIN)  # another key-encryption key cannot decrypt it
