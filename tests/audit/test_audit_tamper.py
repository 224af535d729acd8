"""Tampering with the database is caught by offline verification against an earlier checkpoint.

Each case works on a real database (SQLite and PostgreSQL): append, sign a
checkpoint the auditor keeps, tamper with SQL as an administrator with database
access would, export, verify.
"""

from __future__ import annotations

import io

import pytest
from audit_helpers import PEPPER, append_events
from sqlalchemy import text

from idp.audit.checkpoints import make_checkpoint
from idp.audit.export import export_lines
from idp.audit.search import AuditQuery
from idp.audit.verify import VerifyReport, verify_export
from idp.storage.engine import Database

KEK = b"k" * 32
ORIGIN = "hoviyat.test/audit"


def export(db: Database, query: AuditQuery | None = None) -> bytes:
    lines = export_lines(
        db,
        key_encryption_key=KEK,
        pepper=PEPPER,
        origin=ORIGIN,
        actor_type="administrator",
        actor_id="auditor-1",
        query=query,
    )
    return b"".join(lines)


def verify(blob: bytes, earlier: dict | None) -> VerifyReport:
    return verify_export(io.BytesIO(blob), earlier_checkpoint=earlier)


@pytest.fixture
def logged(db: Database) -> tuple[Database, dict, list[str]]:
    codes = append_events(db, 20)
    earlier = make_checkpoint(db, KEK, ORIGIN).to_json()
    codes += append_events(db, 5)
    return db, earlier, codes


def test_an_untouched_log_verifies_with_the_earlier_checkpoint(logged) -> None:
    db, earlier, _ = logged
    report = verify(export(db), earlier)
    assert report.ok, [p.message for p in report.problems]
    # 25 events, the export's own entry; two checkpoints signed in the log
    assert report.entries == report.tree_size == 26
    assert report.checkpoints == 2


def test_a_changed_row_is_named(logged) -> None:
    db, earlier, codes = logged
    with db.session() as session:
        session.execute(text("UPDATE audit_entries SET outcome = 'match' WHERE leaf_index = 6"))
    report = verify(export(db), earlier)
    assert not report.ok
    assert report.first_bad is not None
    assert report.first_bad.leaf_index == 6
    assert codes[6] in report.first_bad.message and "altered" in report.first_bad.message


def test_a_changed_row_with_the_tree_rebuilt_still_fails_the_earlier_checkpoint(logged) -> None:
    """A thorough attacker recomputes the stored hashes; the signed checkpoint disagrees."""
    from idp.audit.sequencer import sequence_pending

    db, earlier, _ = logged
    with db.session() as session:
        session.execute(text("UPDATE audit_entries SET outcome = 'match' WHERE leaf_index = 4"))
        session.execute(text("UPDATE audit_entries SET leaf_index = NULL"))
        session.execute(text("DELETE FROM audit_tree_nodes"))
        session.execute(text("UPDATE audit_tree_head SET tree_size = 0"))
    sequence_pending(db)  # the stored tree now agrees with the altered rows
    report = verify(export(db), earlier)
    assert not report.ok
    messages = " ".join(p.message for p in report.problems)
    assert "do not reproduce the root of the checkpoint" in messages


def test_a_deleted_row_is_named(logged) -> None:
    db, earlier, _ = logged
    with db.session() as session:
        session.execute(text("DELETE FROM audit_entries WHERE leaf_index = 9"))
    report = verify(export(db), earlier)
    assert not report.ok
    assert report.first_bad is not None
    assert report.first_bad.leaf_index == 9
    assert "missing" in report.first_bad.message
    assert sum("entries are missing" in p.message for p in report.problems) == 1


def test_two_reordered_rows_are_named(logged) -> None:
    db, earlier, _ = logged
    with db.session() as session:
        session.execute(text("UPDATE audit_entries SET leaf_index = -1 WHERE leaf_index = 4"))
        session.execute(text("UPDATE audit_entries SET leaf_index = 4 WHERE leaf_index = 11"))
        session.execute(text("UPDATE audit_entries SET leaf_index = 11 WHERE leaf_index = -1"))
    report = verify(export(db), earlier)
    assert not report.ok
    assert report.first_bad is not None
    assert report.first_bad.leaf_index == 4
    assert "moved" in report.first_bad.message


def test_a_truncated_log_is_caught_by_the_earlier_checkpoint(logged) -> None:
    db, earlier, _ = logged
    with db.session() as session:
        # Everything after entry 12 goes, and the tree is cut back to match.
        session.execute(
            text("DELETE FROM audit_entries WHERE leaf_index >= 12 OR leaf_index IS NULL")
        )
        session.execute(text("DELETE FROM audit_checkpoints"))
        session.execute(text("DELETE FROM audit_tree_nodes WHERE node_index * (1 << level) >= 12"))
        session.execute(
            text("DELETE FROM audit_tree_nodes WHERE (node_index + 1) * (1 << level) > 12")
        )
        session.execute(text("UPDATE audit_tree_head SET tree_size = 12"))
    from idp.audit import tree
    from idp.audit.sequencer import lock_head

    with db.session() as session:
        head = lock_head(session)
        head.root_hash = tree.root_hash(session, 12, 12)
        session.add(head)
    blob = export(db)
    assert verify(blob, None).ok  # on its own, the shortened log looks fine...
    report = verify(blob, earlier)  # ...but not to an auditor who kept a checkpoint
    assert not report.ok
    # 12 entries remain, plus the export's own record
    assert report.first_bad is not None
    assert report.first_bad.leaf_index == 13
    assert "covers 20 entries" in report.first_bad.message
    assert "truncated" in report.first_bad.message


def test_a_filtered_export_carries_inclusion_proofs(logged) -> None:
    db, earlier, _ = logged
    blob = export(db, AuditQuery(actor_id="client-1"))
    report = verify(blob, earlier)
    assert report.ok, [p.message for p in report.problems]
    assert not report.complete and report.entries == 9
    forged = blob.replace(b'"outcome":"match"', b'"outcome":"no_match"', 1)
    assert not verify(forged, earlier).ok
