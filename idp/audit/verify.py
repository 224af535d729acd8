"""Offline verification of an export: needs only the export and, optionally, a root CA.

Checks, in order of the export's lines:

1. the header's log key; with ``root_pem``, its certificate chain up to that root;
2. every checkpoint's signature (C2SP signed note) by a log key, under the export's origin;
3. every entry: its canonical bytes re-hashed (RFC 8785, RFC 9162 leaf hash),
   compared with the leaf hash the log recorded, and its leaf index in sequence;
4. a complete export: the tree rebuilt from the entries' own hashes must give
   every checkpoint's root at that checkpoint's size (this is also the
   consistency check between every pair of checkpoints); a filtered export:
   each entry's inclusion proof must lead to the head checkpoint's root, and
   each earlier checkpoint's consistency proof (RFC 9162 §2.1.4.2) to it too;
5. nothing past the head: an entry no signed checkpoint covers, or a checkpoint
   (the export's or the auditor's) newer than the head, fails the export;
6. an earlier checkpoint the auditor kept: signed by the log, and its size and
   root reproduced by the export's tree.

Any input yields a report or :class:`ExportError` (a refusal), never another
exception: the file is the attacker's.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from idp.audit import rfc9162, signed_note
from idp.audit.canonical import CanonicalizationError, entry_bytes
from idp.audit.export import FORMAT, VERSION


@dataclass
class Problem:
    message: str
    leaf_index: int | None = None
    # False when the index only bounds a range (a root mismatch): never the named entry
    # while a located problem exists.
    located: bool = True


@dataclass
class VerifyReport:
    tree_size: int = 0
    entries: int = 0
    complete: bool = True
    checkpoints: int = 0
    trusted_by: str = "the log key published in the export"
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> Problem | None:
        located = [p for p in self.problems if p.leaf_index is not None and p.located]
        if located:
            return min(located, key=lambda p: p.leaf_index or 0)
        return self.problems[0] if self.problems else None


class ExportError(ValueError):
    """The file is not a Hoviyat audit export at all, or an input beside it is unusable."""


@dataclass(frozen=True)
class _Signed:
    """A checkpoint whose signature verified, and where it came from."""

    checkpoint: signed_note.Checkpoint
    source: str  # "checkpoint on line N" or "the checkpoint you kept"
    consistency_proof: list[bytes] | None = None

    @property
    def stamp(self) -> str:
        return self.checkpoint.signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _hex_list(value: Any) -> list[bytes] | None:
    """Hashes from a JSON list of hex strings; None when it is not one."""
    if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
        return None
    try:
        hashes = [bytes.fromhex(h) for h in value]
    except ValueError:
        return None
    return hashes if all(len(h) == 32 for h in hashes) else None


def _header(raw: bytes | None) -> dict[str, Any]:
    try:
        header = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "header":
        raise ExportError("the first line is not an export header")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ExportError(f"not a {FORMAT} version {VERSION} file")
    origin = header.get("origin")
    if not isinstance(origin, str) or not origin or "\n" in origin:
        raise ExportError("the header's origin is missing or not one line of text")
    size = header.get("tree_size")
    if not _is_int(size) or size < 0:
        raise ExportError("the header's tree_size is not a non-negative integer")
    if not isinstance(header.get("complete"), bool):
        raise ExportError("the header's complete flag is not true or false")
    keys = header.get("log_keys")
    if not isinstance(keys, list) or not all(_is_key_item(item) for item in keys):
        raise ExportError("the header's log_keys are not a list of key_id and public_key_pem")
    return header


def _is_key_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("key_id"), str)
        and isinstance(item.get("public_key_pem"), str)
        and isinstance(item.get("certificate_chain_pem"), str | None)
    )


def _root(root_pem: bytes | None) -> x509.Certificate | None:
    if not root_pem:
        return None
    try:
        return x509.load_pem_x509_certificate(root_pem)
    except ValueError as exc:
        raise ExportError("the root CA file is not a PEM certificate") from exc


def _kept(earlier_checkpoint: Any) -> tuple[str, str | None] | None:
    if earlier_checkpoint is None:
        return None
    if (
        not isinstance(earlier_checkpoint, dict)
        or not isinstance(earlier_checkpoint.get("note"), str)
        or not isinstance(earlier_checkpoint.get("key_id"), str | None)
    ):
        raise ExportError("the earlier checkpoint is not a checkpoint (JSON with a note)")
    return earlier_checkpoint["note"], earlier_checkpoint.get("key_id")


def _load_keys(
    header: dict[str, Any], root: x509.Certificate | None, report: VerifyReport
) -> dict[str, ec.EllipticCurvePublicKey]:
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    if root is not None:
        report.trusted_by = f"the root CA {root.subject.rfc4514_string()}"
    for item in header["log_keys"]:
        label = item["key_id"][:16]
        try:
            public_key = serialization.load_pem_public_key(item["public_key_pem"].encode())
        except (ValueError, UnsupportedAlgorithm):
            report.problems.append(Problem(f"log key {label} is not a PEM public key"))
            continue
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            report.problems.append(Problem(f"log key {label} is not an EC key"))
            continue
        if signed_note.key_id(public_key).hex() != item["key_id"]:
            report.problems.append(Problem(f"log key {label} has another key id"))
            continue
        if root is not None:
            error = _chain_error(public_key, item.get("certificate_chain_pem"), root)
            if error:
                report.problems.append(Problem(f"log key {label}: {error}"))
                continue
        keys[item["key_id"]] = public_key
    if not keys:
        report.problems.append(Problem("the export carries no usable log key"))
    return keys


def _chain_error(
    public_key: ec.EllipticCurvePublicKey, chain_pem: str | None, root: x509.Certificate
) -> str | None:
    """Why the key's certificate chain does not lead to ``root``, or None when it does."""
    if not chain_pem:
        return "no certificate chain: the key cannot be checked against the root CA"
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError:
        return "the certificate chain is not PEM certificates"
    if chain[0].public_key() != public_key:
        return "the certificate is for another key"
    now = datetime.now(UTC)
    path = [*chain, root] if chain[-1] != root else chain
    for child, issuer in itertools.pairwise(path):
        try:
            child.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError) as exc:
            reason = str(exc) or "the signature does not verify"
            return (
                f"{child.subject.rfc4514_string()} is not issued by the next certificate: {reason}"
            )
        if not child.not_valid_before_utc <= now <= child.not_valid_after_utc:
            return f"{child.subject.rfc4514_string()} is outside its validity period"
    return None


def _open(
    note: str, origin: str, keys: dict[str, ec.EllipticCurvePublicKey], key_id: str | None
) -> signed_note.Checkpoint:
    candidates = [keys[key_id]] if key_id in keys else list(keys.values())
    error: Exception = signed_note.NoteError("no log key to check the signature with")
    for public_key in candidates:
        try:
            return signed_note.open_checkpoint(note, origin, public_key)
        except signed_note.NoteError as exc:
            error = exc
    raise error


def verify_export(
    lines: Iterable[bytes],
    *,
    root_pem: bytes | None = None,
    earlier_checkpoint: dict[str, Any] | None = None,
) -> VerifyReport:
    report = VerifyReport()
    iterator = iter(lines)
    header = _header(next(iterator, None))
    root = _root(root_pem)
    kept_note = _kept(earlier_checkpoint)
    origin: str = header["origin"]
    report.tree_size = size = header["tree_size"]
    report.complete = complete = header["complete"]
    keys = _load_keys(header, root, report)

    signed: list[_Signed] = []
    if kept_note is not None:
        try:
            kept = _open(kept_note[0], origin, keys, kept_note[1])
            signed.append(_Signed(kept, "the checkpoint you kept"))
        except signed_note.NoteError as exc:
            report.problems.append(Problem(f"the earlier checkpoint does not verify: {exc}"))
    head_root: bytes | None = None

    expected = built = 0  # next leaf index due; leaves in the rebuilt tree
    sizes = {s.checkpoint.tree_size for s in signed}
    stack: list[tuple[int, bytes]] = []
    roots_at: dict[int, bytes] = {}
    for number, raw in enumerate(iterator, start=2):
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            report.problems.append(Problem(f"line {number} is not JSON"))
            continue
        kind = line.get("type") if isinstance(line, dict) else None
        if kind == "checkpoint":
            found = _checkpoint_line(line, number, origin, keys, report)
            if found is not None:
                signed.append(found)
                sizes.add(found.checkpoint.tree_size)
                report.checkpoints += 1
                if found.checkpoint.tree_size == size and head_root is None:
                    head_root = found.checkpoint.root_hash
            continue
        if kind != "entry":
            report.problems.append(Problem(f"line {number} is neither a checkpoint nor an entry"))
            continue
        report.entries += 1
        checked = _entry_line(line, number, report)
        if checked is None:
            continue
        index, value = checked
        if not complete:
            _check_inclusion(line, index, value, size, head_root, report)
            continue
        if index != expected:
            where = expected if index > expected else index
            report.problems.append(
                Problem(
                    f"leaf index {expected} expected, found {index} (tracking code "
                    f"{line['entry'].get('tracking_code')}): "
                    + ("entries are missing" if where == expected else "entries are out of order"),
                    where,
                )
            )
            if index > expected:
                expected = index  # one report per gap, not one per entry after it
        level = 0
        while stack and stack[-1][0] == level:
            value = rfc9162.node_hash(stack.pop()[1], value)
            level += 1
        stack.append((level, value))
        expected += 1
        built += 1
        if built in sizes:
            roots_at[built] = rfc9162.fold_right([h for _, h in stack])

    if head_root is None:
        report.problems.append(Problem(f"no verified checkpoint of the export's size {size}"))
    _check_forks(signed, report)
    _check_rollback(signed, size, report)
    if complete:
        _check_tree(built, size, signed, roots_at, report)
    else:
        _check_consistency(signed, size, head_root, report)
    return report


def _checkpoint_line(
    line: dict[str, Any],
    number: int,
    origin: str,
    keys: dict[str, ec.EllipticCurvePublicKey],
    report: VerifyReport,
) -> _Signed | None:
    note, key_id = line.get("note"), line.get("key_id")
    if not isinstance(note, str) or not isinstance(key_id, str | None):
        report.problems.append(Problem(f"checkpoint on line {number} has no note"))
        return None
    proof = None
    if "consistency_proof" in line:
        proof = _hex_list(line["consistency_proof"])
        if proof is None:
            report.problems.append(
                Problem(f"checkpoint on line {number}: consistency_proof is not a list of hashes")
            )
            return None
    try:
        checkpoint = _open(note, origin, keys, key_id)
    except signed_note.NoteError as exc:
        report.problems.append(Problem(f"checkpoint on line {number}: {exc}"))
        return None
    # The plain fields are for people reading the file: they must say what the note signs.
    plain = {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash.hex()}
    plain["signed_at"] = checkpoint.signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    differing = [name for name, value in plain.items() if line.get(name, value) != value]
    if differing:
        report.problems.append(
            Problem(
                f"checkpoint on line {number}: {', '.join(differing)} differ from its signed note"
            )
        )
        return None
    return _Signed(checkpoint, f"the checkpoint on line {number}", proof)


def _entry_line(
    line: dict[str, Any], number: int, report: VerifyReport
) -> tuple[int, bytes] | None:
    """(leaf index, leaf hash) of a well-formed entry line, after its own checks."""
    index, entry, recorded = line.get("leaf_index"), line.get("entry"), line.get("leaf_hash")
    if not _is_int(index) or index < 0 or not isinstance(entry, dict):
        report.problems.append(
            Problem(f"entry on line {number} lacks a leaf index or an entry object")
        )
        return None
    code = entry.get("tracking_code")
    try:
        value = rfc9162.leaf_hash(entry_bytes(entry))
    except CanonicalizationError as exc:
        report.problems.append(Problem(f"entry at leaf index {index}: {exc}", index))
        return None
    if entry.get("leaf_index") != index:
        report.problems.append(
            Problem(
                f"entry at leaf index {index} (tracking code {code}) names index "
                f"{entry.get('leaf_index')}: it was moved",
                index,
            )
        )
    if recorded != value.hex():
        report.problems.append(
            Problem(
                f"entry at leaf index {index} (tracking code {code}) does not hash to the "
                "leaf the log recorded: it was altered or moved after it was logged",
                index,
            )
        )
    return index, value


def _check_inclusion(
    line: dict[str, Any],
    index: int,
    leaf: bytes,
    size: int,
    root: bytes | None,
    report: VerifyReport,
) -> None:
    if index >= size:
        report.problems.append(
            Problem(
                f"entry at leaf index {index} is past the newest signed checkpoint "
                f"(size {size}): no signature covers it",
                index,
            )
        )
        return
    if root is None:
        return  # reported once: no verified checkpoint of the export's size
    proof = _hex_list(line.get("inclusion_proof"))
    try:
        if proof is None:
            raise rfc9162.ProofError("the inclusion proof is not a list of hashes")
        rfc9162.verify_inclusion(leaf, index, size, proof, root)
    except rfc9162.ProofError as exc:
        report.problems.append(
            Problem(f"entry at leaf index {index} is not in the signed tree: {exc}", index)
        )


def _check_forks(signed: list[_Signed], report: VerifyReport) -> None:
    """Two signed roots for one size: the log showed different histories (a split view)."""
    by_size: dict[int, _Signed] = {}
    for item in signed:
        first = by_size.setdefault(item.checkpoint.tree_size, item)
        if first.checkpoint.root_hash != item.checkpoint.root_hash:
            report.problems.append(
                Problem(
                    f"{first.source} and {item.source} both cover "
                    f"{item.checkpoint.tree_size} entries with different roots: the log forked"
                )
            )


def _check_rollback(signed: list[_Signed], size: int, report: VerifyReport) -> None:
    for item in signed:
        if item.checkpoint.tree_size > size:
            report.problems.append(
                Problem(
                    f"{item.source} (signed at {item.stamp}) covers {item.checkpoint.tree_size} "
                    f"entries but the log now has only {size}: the log was truncated or rolled "
                    f"back, entries from leaf index {size} on are gone or were replaced",
                    size,
                )
            )


def _check_tree(
    count: int,
    size: int,
    signed: list[_Signed],
    roots_at: dict[int, bytes],
    report: VerifyReport,
) -> None:
    if count < size:
        report.problems.append(
            Problem(f"the export holds {count} entries but its checkpoint covers {size}", count)
        )
    if count > size:
        report.problems.append(
            Problem(
                f"{count - size} entries from leaf index {size} on are past the newest signed "
                f"checkpoint (size {size}): no signature covers them",
                size,
            )
        )
    matched = 0
    for item in sorted(signed, key=lambda s: s.checkpoint.tree_size):
        checkpoint = item.checkpoint
        if checkpoint.tree_size == 0 or checkpoint.tree_size > size:
            continue  # the empty tree proves nothing; beyond the head is a rollback
        if checkpoint.tree_size > count:
            report.problems.append(
                Problem(
                    f"{item.source} (signed at {item.stamp}) covers {checkpoint.tree_size} "
                    f"entries but the export holds only {count}: entries from leaf index "
                    f"{count} on are gone",
                    count,
                )
            )
            continue
        if roots_at.get(checkpoint.tree_size) != checkpoint.root_hash:
            report.problems.append(
                Problem(
                    f"the first {checkpoint.tree_size} entries do not reproduce the root of "
                    f"{item.source} (signed at {item.stamp}): an entry between leaf index "
                    f"{matched} and {checkpoint.tree_size - 1} was changed, removed or reordered",
                    matched,
                    located=False,
                )
            )
        else:
            matched = checkpoint.tree_size


def _check_consistency(
    signed: list[_Signed], size: int, head_root: bytes | None, report: VerifyReport
) -> None:
    """A filtered export: every checkpoint is a prefix of the head (RFC 9162 §2.1.4.2).

    Each consistent with the head makes every pair consistent with each other.
    The auditor's kept checkpoint carries no proof: it must be one of the
    export's checkpoints, whose proof then covers it (forks were checked).
    """
    if head_root is None:
        return
    proven = {size}
    for item in signed:
        checkpoint = item.checkpoint
        if item.consistency_proof is None or checkpoint.tree_size > size:
            continue
        try:
            rfc9162.verify_consistency(
                checkpoint.tree_size, size, checkpoint.root_hash, head_root, item.consistency_proof
            )
        except rfc9162.ProofError as exc:
            report.problems.append(
                Problem(f"{item.source} is not a prefix of the head checkpoint: {exc}")
            )
            continue
        proven.add(checkpoint.tree_size)
    for item in signed:
        tree_size = item.checkpoint.tree_size
        if item.consistency_proof is not None:
            continue  # checked above
        if tree_size <= size and tree_size != 0 and tree_size not in proven:
            report.problems.append(
                Problem(
                    f"{item.source} (size {tree_size}) comes with no consistency proof to the "
                    f"head (size {size}): the export cannot show the log still extends it"
                )
            )
