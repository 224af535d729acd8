"""RFC 9162 §2.1 hashing and proofs against a direct transcription of the RFC's definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.audit import rfc9162


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as §2.1.1 defines it (recursive, over raw entries)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return rfc9162.leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return rfc9162.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of §2.1.3.1."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], b), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def range_lookup(leaves: list[bytes]):
    """A store answering perfect-subtree lookups from the leaves themselves."""

    def lookup(keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {
            (level, index): mth(leaves[index << level : (index + 1) << level])
            for level, index in keys
        }

    return lookup


def test_known_answer_for_the_empty_tree_and_one_leaf() -> None:
    assert rfc9162.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert rfc9162.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


@given(st.integers(min_value=1, max_value=70), st.data())
def test_inclusion_proofs_match_the_rfc_and_verify(size: int, data: st.DataObject) -> None:
    leaves = entries(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    ranges = rfc9162.inclusion_ranges(index, size)
    proof = rfc9162.range_hashes(ranges, range_lookup(leaves))
    assert proof == path(index, leaves)
    root = mth(leaves)
    assert rfc9162.root_from_leaf_hashes(map(rfc9162.leaf_hash, leaves)) == (size, root)
    rfc9162.verify_inclusion(rfc9162.leaf_hash(leaves[index]), index, size, proof, root)
    with pytest.raises(rfc9162.ProofError):
        rfc9162.verify_inclusion(rfc9162.leaf_hash(b"forged"), index, size, proof, root)
    if size > 1:
        with pytest.raises(rfc9162.ProofError):
            rfc9162.verify_inclusion(
                rfc9162.leaf_hash(leaves[index]), (index + 1) % size, size, proof, root
            )


@given(st.integers(min_value=1, max_value=70), st.data())
def test_consistency_proofs_match_the_rfc_and_verify(new_size: int, data: st.DataObject) -> None:
    leaves = entries(new_size)
    old_size = data.draw(st.integers(min_value=1, max_value=new_size))
    ranges = rfc9162.consistency_ranges(old_size, new_size)
    proof = rfc9162.range_hashes(ranges, range_lookup(leaves))
    expected = [] if old_size == new_size else subproof(old_size, leaves, True)
    assert proof == expected
    old_root, new_root = mth(leaves[:old_size]), mth(leaves)
    rfc9162.verify_consistency(old_size, new_size, old_root, new_root, proof)
    forged_old = mth([*leaves[: old_size - 1], b"changed"])
    with pytest.raises(rfc9162.ProofError):
        rfc9162.verify_consistency(old_size, new_size, forged_old, new_root, proof)


def test_consistency_rejects_a_shrinking_tree() -> None:
    with pytest.raises(rfc9162.ProofError, match="shrank"):
        rfc9162.verify_consistency(5, 4, b"x" * 32, b"y" * 32, [])
