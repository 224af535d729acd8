"""Proofs from the stored tree: every answer reads O(log n) stored subtree hashes.

The sequencer stores the hash of each complete perfect subtree. Any range an
RFC 9162 proof names is a run of at most log2(n) such subtrees
(:func:`idp.audit.rfc9162.perfect_subtrees`), so a proof is one indexed query
for at most about 2·log2(n) rows, whatever the size of the log.
"""

from __future__ import annotations

from sqlmodel import Session

from idp.audit import rfc9162
from idp.storage.audit_tree import load_nodes


def _check_size(tree_size: int, current_size: int) -> None:
    if tree_size > current_size:
        raise rfc9162.ProofError(
            f"tree size {tree_size} is beyond the log's current size {current_size}"
        )


def root_hash(session: Session, tree_size: int, current_size: int) -> bytes:
    """MTH of the first ``tree_size`` leaves, for any size the log has reached."""
    _check_size(tree_size, current_size)
    if tree_size == 0:
        return rfc9162.EMPTY_ROOT
    return rfc9162.range_hashes([(0, tree_size)], lambda keys: load_nodes(session, keys))[0]


def leaf_hash_at(session: Session, index: int) -> bytes | None:
    return load_nodes(session, {(0, index)}).get((0, index))


def inclusion_proof(session: Session, index: int, tree_size: int, current_size: int) -> list[bytes]:
    _check_size(tree_size, current_size)
    ranges = rfc9162.inclusion_ranges(index, tree_size)
    return rfc9162.range_hashes(ranges, lambda keys: load_nodes(session, keys))


def consistency_proof(
    session: Session, old_size: int, new_size: int, current_size: int
) -> list[bytes]:
    _check_size(new_size, current_size)
    ranges = rfc9162.consistency_ranges(old_size, new_size)
    return rfc9162.range_hashes(ranges, lambda keys: load_nodes(session, keys))
