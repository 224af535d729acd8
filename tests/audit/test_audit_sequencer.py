"""Sequencing: gap-free leaf indexes and stored subtree hashes, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from audit_helpers import append_events
from sqlalchemy import func, select
from sqlmodel import Session, col

from idp.audit import rfc9162, tree
from idp.audit.sequencer import read_head, sequence_pending
from idp.storage.audit_log import AuditTreeNode
from idp.storage.engine import Database
from idp.storage.models import AuditEntry

HERE = str(Path(__file__).parent)


def _leaf_hashes(session: Session, count: int) -> list[bytes]:
    """The first ``count`` leaf hashes, every one of them stored."""
    leaves = [tree.leaf_hash_at(session, i) for i in range(count)]
    assert all(leaf is not None for leaf in leaves)
    return [leaf for leaf in leaves if leaf is not None]


def test_entries_get_consecutive_indexes_and_the_stored_tree_answers_proofs(
    db: Database,
) -> None:
    append_events(db, 7)
    head = sequence_pending(db, limit=3)  # several batches, each extending the last
    assert head.tree_size == 7
    append_events(db, 6)
    head = sequence_pending(db, limit=4)
    with db.session() as session:
        indexes = session.execute(
            select(col(AuditEntry.leaf_index)).order_by(col(AuditEntry.id))
        ).all()
        leaves = _leaf_hashes(session, 13)
        assert [i for (i,) in indexes] == list(range(13))
        assert rfc9162.root_from_leaf_hashes(leaves) == (13, head.root_hash)
        assert read_head(session) == head
        for size in (1, 5, 8, 13):
            root = tree.root_hash(session, size, 13)
            assert root == rfc9162.root_from_leaf_hashes(leaves[:size])[1]
            for index in range(size):
                proof = tree.inclusion_proof(session, index, size, 13)
                rfc9162.verify_inclusion(leaves[index], index, size, proof, root)
        proof = tree.consistency_proof(session, 5, 13, 13)
        rfc9162.verify_consistency(5, 13, tree.root_hash(session, 5, 13), head.root_hash, proof)
        # 13 leaves + 6 + 3 + 1 complete perfect subtrees (levels 1..3).
        assert session.execute(select(func.count()).select_from(AuditTreeNode)).one()[0] == 23


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from idp.audit.sequencer import sequence_pending
    from idp.storage.engine import Database
    from audit_helpers import append_events

    db = Database(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        append_events(db, 5)
        sequence_pending(db, limit=7)
    db.dispose()
    """
)


def test_two_processes_appending_and_sequencing_make_one_tree(
    db: Database, database_url: str
) -> None:
    rounds = 8
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, database_url, str(rounds), HERE])
        for _ in range(2)
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    head = sequence_pending(db)
    total = 2 * rounds * 5
    with db.session() as session:
        indexes = sorted(i for (i,) in session.execute(select(col(AuditEntry.leaf_index))).all())
        assert indexes == list(range(total))
        leaves = _leaf_hashes(session, total)
    assert rfc9162.root_from_leaf_hashes(leaves) == (total, head.root_hash)


# PostgreSQL refuses such JSON at insert; SQLite stores it.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_entry_whose_detail_json_cannot_carry_does_not_stop_the_log(db: Database) -> None:
    from idp.audit.log import AuditEvent, append

    with db.session() as session:
        append(
            session,
            AuditEvent(
                tracking_code="T1",
                event_type="verification",
                actor_type="client",
                outcome="match",
                detail={"score": float("nan")},
            ),
        )
    append_events(db, 2)
    assert sequence_pending(db).tree_size == 3
