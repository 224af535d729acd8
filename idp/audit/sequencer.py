"""Giving appended entries their gap-free leaf indexes and growing the stored tree.

Choice: appends do not sequence. ``append`` only inserts the row in the
caller's transaction (no shared row is touched, so verification requests never
queue behind one another). A sequencing run then, in a transaction of its own:

1. locks the single ``audit_tree_head`` row (``SELECT ... FOR UPDATE`` on
   PostgreSQL; on SQLite ``BEGIN IMMEDIATE`` already holds the database's one
   write lock), so at most one run in any process extends the tree at a time;
2. reads committed entries with no leaf index, oldest id first, a batch at
   a time;
3. gives them indexes ``tree_size, tree_size + 1, ...``, hashes their
   canonical bytes (:mod:`idp.audit.canonical`) into leaves, and stores every
   perfect subtree those leaves complete (level 0 is the leaves);
4. moves the head to the new size and root, and commits.

Gaps cannot appear: indexes come from the locked head inside one
transaction, and the unique constraints on ``audit_entries.leaf_index`` and
the node key reject a second tree outright should the lock ever be bypassed.
An entry whose transaction commits late (a lower id committed after a higher
one) just joins a later batch: the order is the order of sequencing, like a
CT log's merge. Runs happen on demand (before every checkpoint, proof and
export) and at the checkpoint interval, so an entry waits at most that long.

This was preferred over sequencing inside ``append`` because the latter holds
the head's row lock for the rest of the caller's transaction (including any
registry call made after appending) and caps every writer at one commit per
lock hand-over; batching amortises the lock and the hashing over thousands of
entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from idp.audit import rfc9162
from idp.audit.canonical import entry_bytes, row_document
from idp.storage import audit_tree
from idp.storage.audit_log import AuditTreeHead
from idp.storage.engine import Database

BATCH_SIZE = 5000


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes


def lock_head(session: Session) -> AuditTreeHead:
    """The tree head, locked until the session's transaction ends."""
    return audit_tree.lock_head(session, rfc9162.EMPTY_ROOT)


def read_head(session: Session) -> TreeHead:
    head = audit_tree.read_head(session)
    if head is None:
        return TreeHead(0, rfc9162.EMPTY_ROOT)
    return TreeHead(head.tree_size, head.root_hash)


def sequence_batch(session: Session, limit: int = BATCH_SIZE) -> tuple[TreeHead, int]:
    """One sequencing step inside ``session``'s transaction: (new head, entries added)."""
    head = lock_head(session)
    size = head.tree_size
    rows = audit_tree.unsequenced_entries(session, limit)
    if not rows:
        return TreeHead(size, head.root_hash), 0

    frontier_keys = rfc9162.perfect_subtrees(0, size)
    stored = audit_tree.load_nodes(session, set(frontier_keys))
    stack = [(level, stored[(level, index)]) for level, index in frontier_keys]
    new_nodes: list[tuple[int, int, bytes]] = []
    assignments: list[tuple[int, int]] = []
    for offset, row in enumerate(rows):
        index = size + offset
        value = rfc9162.leaf_hash(entry_bytes(row_document(row, index)))
        level = 0
        new_nodes.append((0, index, value))
        while stack and stack[-1][0] == level:
            value = rfc9162.node_hash(stack.pop()[1], value)
            level += 1
            new_nodes.append((level, index >> level, value))
        stack.append((level, value))
        assignments.append((index, row.id))

    audit_tree.record_leaves(session, assignments, new_nodes)
    new_size, new_root = size + len(rows), rfc9162.fold_right([h for _, h in stack])
    audit_tree.move_head(session, head, new_size, new_root)
    return TreeHead(new_size, new_root), len(rows)


def sequence_pending(db: Database, limit: int = BATCH_SIZE) -> TreeHead:
    """Sequence every entry committed so far, one transaction per batch."""
    while True:
        with db.session() as session:
            head, added = sequence_batch(session, limit)
        if added < limit:
            return head
