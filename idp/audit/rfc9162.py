"""Merkle tree hashing, inclusion and consistency proofs: RFC 9162 §2.1.

Leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``
(§2.1.1). Proof generation is expressed over *ranges* ``[lo, hi)`` of leaves:
each proof element is ``MTH(D[lo:hi])`` for a range this module names, so a
store can answer it from stored hashes of perfect subtrees (see
:func:`perfect_subtrees`) without touching the leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

Range = tuple[int, int]

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof or its parameters fail verification (RFC 9162 §2.1.3.2, §2.1.4.2)."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form PATH(index, D[0:size]), leaf first (§2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    path: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo = lo + k
    path.reverse()
    return path


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The ranges whose hashes form PROOF(old_size, D[0:new_size]) (§2.1.4.1)."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == new_size:
        return []
    proof: list[Range] = []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append((lo, hi))
            return
        k = _split(n)
        if m <= k:
            subproof(m, lo, lo + k, complete)
            proof.append((lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            proof.append((lo, lo + k))

    subproof(old_size, 0, new_size, True)
    return proof


def perfect_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """``(level, node_index)`` of the stored perfect subtrees that make up ``[lo, hi)``.

    Valid for the ranges this module produces: they start at a multiple of a
    power of two at least as large as their length's highest bit. Ordered
    left to right; their hashes fold right to left into ``MTH(D[lo:hi])``.
    """
    nodes = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """MTH of consecutive perfect subtrees of strictly decreasing size."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def range_hashes(
    ranges: Iterable[Range], lookup: Callable[[set[tuple[int, int]]], dict[tuple[int, int], bytes]]
) -> list[bytes]:
    """Hashes of ranges from one batched ``lookup`` of stored perfect subtrees."""
    ranges = list(ranges)
    wanted = {node for lo, hi in ranges for node in perfect_subtrees(lo, hi)}
    stored = lookup(wanted) if wanted else {}
    missing = wanted - stored.keys()
    if missing:
        raise ProofError(f"the tree store lacks {len(missing)} subtree hashes, e.g. {min(missing)}")
    return [fold_right([stored[node] for node in perfect_subtrees(lo, hi)]) for lo, hi in ranges]


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> tuple[int, bytes]:
    """(size, MTH) of a tree built from its leaf hashes in one pass, O(log n) memory."""
    stack: list[tuple[int, bytes]] = []  # (level, hash) of the frontier, left to right
    size = 0
    for value in leaf_hashes:
        level = 0
        while stack and stack[-1][0] == level:
            value = node_hash(stack.pop()[1], value)
            level += 1
        stack.append((level, value))
        size += 1
    if not stack:
        return 0, EMPTY_ROOT
    return size, fold_right([h for _, h in stack])


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise ProofError unless ``leaf`` is at ``index`` under ``root``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root hash")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless the new tree extends the old one."""
    if old_size > new_size:
        raise ProofError(f"tree shrank from {old_size} to {new_size} entries")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the earlier root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the later root")
