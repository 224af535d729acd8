"""Offline verification of an export: needs only the export and, optionally, a root CA.

Checks, in order of the export's lines:

1. the header's log key; with ``root_pem``, its certificate chain up to that root;
2. every checkpoint's signature (C2SP signed note) by a log key;
3. every entry: its canonical bytes re-hashed (RFC 8785, RFC 9162 leaf hash),
   compared with the leaf hash the log recorded, and its leaf index in sequence;
4. a complete export: the tree rebuilt from the entries' own hashes must give
   every checkpoint's root at that checkpoint's size (this is also the
   consistency check between checkpoints); a filtered export: each entry's
   inclusion proof must lead to the latest checkpoint's root;
5. an earlier checkpoint the auditor kept: signed by the log, and its size and
   root reproduced by the export's tree.

The first problem found in leaf order names the first bad entry.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
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
    """The file is not a Hoviyat audit export at all."""


def _load_keys(
    header: dict[str, Any], root_pem: bytes | None, report: VerifyReport
) -> dict[str, ec.EllipticCurvePublicKey]:
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    root = x509.load_pem_x509_certificate(root_pem) if root_pem else None
    if root is not None:
        report.trusted_by = f"the root CA {root.subject.rfc4514_string()}"
    for item in header.get("log_keys") or []:
        public_key = serialization.load_pem_public_key(item["public_key_pem"].encode())
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            report.problems.append(Problem(f"log key {item['key_id']} is not an EC key"))
            continue
        if signed_note.key_id(public_key).hex() != item["key_id"]:
            report.problems.append(Problem(f"log key {item['key_id']} has another key id"))
            continue
        if root is not None:
            error = _chain_error(public_key, item.get("certificate_chain_pem"), root)
            if error:
                report.problems.append(Problem(f"log key {item['key_id']}: {error}"))
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
    chain = x509.load_pem_x509_certificates(chain_pem.encode())
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
    try:
        header = orjson.loads(next(iterator))
    except (StopIteration, orjson.JSONDecodeError) as exc:
        raise ExportError("the first line is not an export header") from exc
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ExportError(f"not a {FORMAT} version {VERSION} file")
    origin = header["origin"]
    report.tree_size = size = int(header["tree_size"])
    report.complete = complete = bool(header["complete"])
    keys = _load_keys(header, root_pem, report)

    checkpoints: list[signed_note.Checkpoint] = []
    if earlier_checkpoint is not None:
        try:
            kept = _open(earlier_checkpoint["note"], origin, keys, earlier_checkpoint.get("key_id"))
            checkpoints.append(kept)
        except (signed_note.NoteError, KeyError) as exc:
            report.problems.append(Problem(f"the earlier checkpoint does not verify: {exc}"))
    latest_root: bytes | None = None

    expected = built = 0  # next leaf index due; leaves in the rebuilt tree
    sizes = {c.tree_size for c in checkpoints}
    stack: list[tuple[int, bytes]] = []
    roots_at: dict[int, bytes] = {}
    for number, raw in enumerate(iterator, start=2):
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            report.problems.append(Problem(f"line {number} is not JSON"))
            continue
        kind = line.get("type")
        if kind == "checkpoint":
            try:
                checkpoint = _open(line["note"], origin, keys, line.get("key_id"))
            except signed_note.NoteError as exc:
                report.problems.append(Problem(f"checkpoint on line {number}: {exc}"))
                continue
            checkpoints.append(checkpoint)
            sizes.add(checkpoint.tree_size)
            report.checkpoints += 1
            if checkpoint.tree_size == size:
                latest_root = checkpoint.root_hash
            continue
        if kind != "entry":
            report.problems.append(Problem(f"line {number} has unknown type {kind!r}"))
            continue
        report.entries += 1
        index = line.get("leaf_index")
        entry = line.get("entry") or {}
        code = entry.get("tracking_code")
        try:
            value = rfc9162.leaf_hash(entry_bytes(entry))
        except CanonicalizationError as exc:
            report.problems.append(Problem(f"entry at leaf index {index}: {exc}", index))
            continue
        if entry.get("leaf_index") != index:
            report.problems.append(
                Problem(
                    f"entry at leaf index {index} (tracking code {code}) names index "
                    f"{entry.get('leaf_index')}: it was moved",
                    index,
                )
            )
        if line.get("leaf_hash") != value.hex():
            report.problems.append(
                Problem(
                    f"entry at leaf index {index} (tracking code {code}) does not hash to the "
                    "leaf the log recorded: it was altered or moved after it was logged",
                    index,
                )
            )
        if not complete:
            _check_inclusion(line, value, size, latest_root, report)
            continue
        if index != expected:
            where = expected if isinstance(index, int) and index > expected else index
            report.problems.append(
                Problem(
                    f"leaf index {expected} expected, found {index} (tracking code {code}): "
                    + ("entries are missing" if where == expected else "entries are out of order"),
                    where if isinstance(where, int) else expected,
                )
            )
            if isinstance(index, int) and index > expected:
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

    if latest_root is None:
        report.problems.append(Problem(f"no verified checkpoint of the export's size {size}"))
    if complete:
        _check_tree(built, size, checkpoints, roots_at, report)
    return report


def _check_inclusion(
    line: dict[str, Any], leaf: bytes, size: int, root: bytes | None, report: VerifyReport
) -> None:
    index = line.get("leaf_index")
    if root is None:
        return
    try:
        proof = [bytes.fromhex(h) for h in line.get("inclusion_proof") or []]
        rfc9162.verify_inclusion(leaf, int(index or 0), size, proof, root)
    except (rfc9162.ProofError, ValueError) as exc:
        report.problems.append(
            Problem(f"entry at leaf index {index} is not in the signed tree: {exc}", index)
        )


def _check_tree(
    count: int,
    size: int,
    checkpoints: list[signed_note.Checkpoint],
    roots_at: dict[int, bytes],
    report: VerifyReport,
) -> None:
    if count < size:
        report.problems.append(
            Problem(f"the export holds {count} entries but its checkpoint covers {size}", count)
        )
    matched = 0
    for checkpoint in sorted(checkpoints, key=lambda c: c.tree_size):
        stamp = checkpoint.signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if checkpoint.tree_size == 0:
            continue
        if checkpoint.tree_size > count:
            report.problems.append(
                Problem(
                    f"the checkpoint signed at {stamp} covers {checkpoint.tree_size} entries "
                    f"but the log now has only {count}: the log was truncated, entries "
                    f"from leaf index {count} on are gone or were replaced",
                    count,
                )
            )
            continue
        if roots_at.get(checkpoint.tree_size) != checkpoint.root_hash:
            report.problems.append(
                Problem(
                    f"the first {checkpoint.tree_size} entries do not reproduce the root of the "
                    f"checkpoint signed at {stamp}: an entry between leaf index {matched} and "
                    f"{checkpoint.tree_size - 1} was changed, removed or reordered",
                    matched,
                    located=False,
                )
            )
        else:
            matched = checkpoint.tree_size
