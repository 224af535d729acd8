"""Proofs from the stored tree: every answer reads O(log n) stored subtree hashes.

The sequencer stores the hash of each complete perfect subtree. Any range an
RFC 9162 proof names is a run of at most log2(n) such subtrees
(:func:`idp.audit.rfc9162.perfect_subtrees`), so a proof is one indexed query
for at most about 2·log2(n) rows, whatever the size of the log.
"""

from __future__ import annotations

from sqlmodel import Session

from idp.audit import rfc9162


def load_nodes(session: Session, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not keys:
        return {}
    by_level: dict[int, list[int]] = {}
    for level, index in keys:
        by_level.setdefault(level, []).append(index)
    # One equality-and-IN term per level: both SQLite (multi-index OR) and
    # PostgreSQL answer it from the primary key; a row-value IN list makes
    # SQLite scan the table. Written as driver SQL because building the
    # expression with SQLAlchemy costs more than the query on this hot path.
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    terms, params = [], []
    for level, indexes in sorted(by_level.items()):
        terms.append(f"(level = {mark} AND node_index IN ({', '.join([mark] * len(indexes))}))")
        params.append(int(level))
        params.extend(int(i) for i in indexes)
    # Only placeholders are joined in; every value travels as a parameter.
    sql = "SELECT level, node_index, hash FROM audit_tree_nodes WHERE " + " OR ".join(terms)  # noqa: S608
    rows = connection.exec_driver_sql(sql, tuple(params))
    return {(level, index): bytes(value) for level, index, value in rows}


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
