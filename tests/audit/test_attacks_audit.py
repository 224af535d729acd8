"""Attacks on the offline audit verifier, from the side of whoever holds the export file.

Every export here is made by the real log (SQLite and PostgreSQL), then edited
as an attacker would edit it: appended to, rolled back, reordered, re-signed
with another key or for another log, or broken so the verifier must refuse it.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from audit_helpers import PEPPER, append_events
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from idp.audit import rfc9162, signed_note
from idp.audit.canonical import entry_bytes
from idp.audit.checkpoints import make_checkpoint
from idp.audit.export import export_lines
from idp.audit.search import AuditQuery
from idp.audit.signing_key import signing_key
from idp.audit.verify import ExportError, VerifyReport, verify_export
from idp.cli.audit import audit_app
from idp.storage.engine import Database

KEK = b"k" * 32
ORIGIN = "hoviyat.test/audit"
runner = CliRunner()


def export(db: Database, query: AuditQuery | None = None) -> list[dict[str, Any]]:
    blob = b"".join(
        export_lines(
            db,
            key_encryption_key=KEK,
            pepper=PEPPER,
            origin=ORIGIN,
            actor_type="administrator",
            actor_id="auditor-1",
            query=query,
        )
    )
    return [orjson.loads(line) for line in blob.splitlines()]


def blob(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def verify(lines: list[dict[str, Any]], earlier: dict | None = None) -> VerifyReport:
    return verify_export(io.BytesIO(blob(lines)), earlier_checkpoint=earlier)


def messages(report: VerifyReport) -> str:
    return " | ".join(p.message for p in report.problems)


def of_type(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == kind]


def forged_entry(template: dict[str, Any], index: int) -> dict[str, Any]:
    """An entry line the attacker made up, hashed correctly: only a signature can tell."""
    entry = {**template["entry"], "leaf_index": index, "tracking_code": f"FORGED{index}"}
    return {
        "type": "entry",
        "leaf_index": index,
        "leaf_hash": rfc9162.leaf_hash(entry_bytes(entry)).hex(),
        "entry": entry,
    }


def resigned(db: Database, checkpoint: dict[str, Any], *, origin_line: str) -> dict[str, Any]:
    """The checkpoint's tree signed again by the log's own key, with another origin line."""
    with db.session() as session:
        _, private_key = signing_key(session, KEK)
    text = signed_note.Checkpoint(
        origin_line,
        checkpoint["tree_size"],
        bytes.fromhex(checkpoint["root_hash"]),
        datetime.now(UTC).replace(microsecond=0),
    ).text()
    return {**checkpoint, "note": signed_note.sign(text, ORIGIN, private_key)}


@pytest.fixture
def logged(db: Database) -> tuple[Database, dict]:
    append_events(db, 12)
    earlier = make_checkpoint(db, KEK, ORIGIN).to_json()
    append_events(db, 3)
    return db, earlier


# --- entries no checkpoint covers -------------------------------------------------------


def test_attack_entries_appended_past_the_newest_checkpoint_are_refused(logged) -> None:
    db, earlier = logged
    lines = export(db)
    size = lines[0]["tree_size"]
    lines.append(forged_entry(of_type(lines, "entry")[-1], size))
    report = verify(lines, earlier)
    assert not report.ok
    assert report.first_bad is not None
    assert report.first_bad.leaf_index == size
    assert "no signature covers" in report.first_bad.message


def test_attack_appended_entries_fail_on_the_cli_instead_of_ok(logged, tmp_path: Path) -> None:
    db, _ = logged
    lines = export(db)
    size = lines[0]["tree_size"]
    lines.append(forged_entry(of_type(lines, "entry")[-1], size))
    path = tmp_path / "appended.jsonl"
    path.write_bytes(blob(lines))
    result = runner.invoke(audit_app, ["verify", str(path)])
    assert result.exit_code == 1
    assert "OK" not in result.stdout
    assert "no signature covers" in result.stderr


def test_attack_entry_past_the_head_in_a_filtered_export_is_refused(logged) -> None:
    db, _ = logged
    lines = export(db, AuditQuery(actor_id="client-1"))
    size = lines[0]["tree_size"]
    extra = {**forged_entry(of_type(lines, "entry")[-1], size), "inclusion_proof": []}
    report = verify([*lines, extra])
    assert not report.ok
    assert report.first_bad is not None
    assert "no signature covers" in report.first_bad.message


# --- rollback and consistency -----------------------------------------------------------


def test_attack_rolled_back_filtered_export_against_a_newer_kept_checkpoint_fails(
    logged,
) -> None:
    db, _ = logged
    old = export(db, AuditQuery(actor_id="client-1"))
    append_events(db, 4)
    newer = make_checkpoint(db, KEK, ORIGIN).to_json()
    assert verify(old).ok  # on its own, the old export is a fine old export...
    report = verify(old, newer)  # ...but not when the auditor has seen a newer head
    assert not report.ok
    assert "rolled back" in messages(report)


def test_attack_rolled_back_complete_export_against_a_newer_kept_checkpoint_fails(
    logged,
) -> None:
    db, _ = logged
    old = export(db)
    append_events(db, 4)
    newer = make_checkpoint(db, KEK, ORIGIN).to_json()
    report = verify(old, newer)
    assert not report.ok
    assert "rolled back" in messages(report)


def test_attack_filtered_export_with_a_tampered_consistency_proof_is_refused(logged) -> None:
    db, earlier = logged
    lines = export(db, AuditQuery(actor_id="client-1"))
    assert verify(lines, earlier).ok
    for line in of_type(lines, "checkpoint"):
        if line["consistency_proof"]:
            line["consistency_proof"] = line["consistency_proof"][:-1]  # truncated proof
            break
    else:
        pytest.fail("no checkpoint before the head carries a proof")
    report = verify(lines, earlier)
    assert not report.ok
    assert "not a prefix of the head" in messages(report)


def test_attack_filtered_export_without_consistency_proofs_is_refused(logged) -> None:
    db, earlier = logged
    lines = export(db, AuditQuery(actor_id="client-1"))
    for line in of_type(lines, "checkpoint"):
        line.pop("consistency_proof")
    report = verify(lines, earlier)
    assert not report.ok
    assert "no consistency proof" in messages(report)


def test_attack_kept_checkpoint_of_a_forked_history_is_refused_by_a_filtered_export(
    logged,
) -> None:
    """The log showed the auditor one root at size n and now shows another."""
    db, earlier = logged
    lines = export(db, AuditQuery(actor_id="client-1"))
    with db.session() as session:
        _, private_key = signing_key(session, KEK)
    other_root = bytes(32)
    text = signed_note.Checkpoint(
        ORIGIN, earlier["tree_size"], other_root, datetime.now(UTC).replace(microsecond=0)
    ).text()
    fork = {**earlier, "note": signed_note.sign(text, ORIGIN, private_key)}
    report = verify(lines, fork)
    assert not report.ok
    assert "forked" in messages(report)


# --- signatures, keys and origins -------------------------------------------------------


def test_attack_checkpoint_with_a_forged_signature_is_refused(logged) -> None:
    db, earlier = logged
    lines = export(db)
    head = of_type(lines, "checkpoint")[-1]
    text, _, signature = head["note"].rpartition("\n\n")
    name, _, value = signature.strip().rpartition(" ")
    raw = bytearray(base64.b64decode(value))
    raw[-1] ^= 1
    head["note"] = f"{text}\n\n{name} {base64.b64encode(bytes(raw)).decode()}\n"
    report = verify(lines, earlier)
    assert not report.ok
    assert "does not verify" in messages(report)


def test_attack_checkpoint_for_another_log_signed_by_the_same_key_is_refused(logged) -> None:
    db, _ = logged
    lines = export(db)
    checkpoints = of_type(lines, "checkpoint")
    checkpoints[-1].update(resigned(db, checkpoints[-1], origin_line="staging.test/audit"))
    report = verify(lines)
    assert not report.ok
    assert "for the log 'staging.test/audit'" in messages(report)


def test_attack_key_substitution_with_every_checkpoint_re_signed_fails_the_kept_one(
    logged,
) -> None:
    """The attacker swaps in their own key and re-signs the history they rewrote."""
    db, earlier = logged
    lines = export(db)
    attacker = ec.generate_private_key(ec.SECP256R1())
    pem = attacker.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = signed_note.key_id(attacker.public_key()).hex()
    lines[0]["log_keys"] = [
        {"key_id": key_id, "public_key_pem": pem.decode(), "certificate_chain_pem": None}
    ]
    for line in of_type(lines, "checkpoint"):
        note = signed_note.parse_checkpoint(line["note"].rpartition("\n\n")[0] + "\n")
        line["note"] = signed_note.sign(note.text(), ORIGIN, attacker)
        line["key_id"] = key_id
    assert verify(lines).ok  # self-consistent, trusting only the export's own key...
    report = verify(lines, earlier)  # ...but the checkpoint the auditor kept says otherwise
    assert not report.ok
    assert "the earlier checkpoint does not verify" in messages(report)


def test_attack_checkpoint_signed_by_an_outsider_key_is_refused(logged) -> None:
    db, _ = logged
    lines = export(db)
    outsider = ec.generate_private_key(ec.SECP256R1())
    head = of_type(lines, "checkpoint")[-1]
    note = signed_note.parse_checkpoint(head["note"].rpartition("\n\n")[0] + "\n")
    head["note"] = signed_note.sign(note.text(), ORIGIN, outsider)
    report = verify(lines)
    assert not report.ok
    assert "no verified checkpoint of the export's size" in messages(report)


# --- entries moved, removed, altered in the file ------------------------------------------


def test_attack_two_entry_lines_swapped_in_the_file_are_named(logged) -> None:
    db, earlier = logged
    lines = export(db)
    entries = [i for i, line in enumerate(lines) if line["type"] == "entry"]
    a, b = entries[3], entries[7]
    lines[a], lines[b] = lines[b], lines[a]
    report = verify(lines, earlier)
    assert not report.ok
    assert "out of order" in messages(report) or "missing" in messages(report)


def test_attack_entry_line_removed_from_the_file_is_named(logged) -> None:
    db, earlier = logged
    lines = export(db)
    removed = next(i for i, line in enumerate(lines) if line.get("leaf_index") == 5)
    del lines[removed]
    report = verify(lines, earlier)
    assert not report.ok
    assert report.first_bad is not None
    assert report.first_bad.leaf_index == 5


def test_attack_entry_altered_with_its_leaf_hash_recomputed_fails_the_roots(logged) -> None:
    db, earlier = logged
    lines = export(db)
    target = next(line for line in lines if line.get("leaf_index") == 8)
    target["entry"]["outcome"] = "match" if target["entry"]["outcome"] != "match" else "no_match"
    target["leaf_hash"] = rfc9162.leaf_hash(entry_bytes(target["entry"])).hex()
    report = verify(lines, earlier)
    assert not report.ok
    assert "do not reproduce the root" in messages(report)


def test_attack_filtered_entry_with_a_truncated_inclusion_proof_is_refused(logged) -> None:
    db, _ = logged
    lines = export(db, AuditQuery(actor_id="client-1"))
    entry = of_type(lines, "entry")[0]
    entry["inclusion_proof"] = entry["inclusion_proof"][:-1]
    report = verify(lines)
    assert not report.ok
    assert report.first_bad is not None
    assert "not in the signed tree" in report.first_bad.message


# --- malformed exports: a refusal, never a traceback ---------------------------------------


def _malformed(lines: list[dict[str, Any]], case: str) -> bytes:
    header = dict(lines[0])
    rest = [orjson.dumps(line) for line in lines[1:]]
    if case == "header is an array":
        return b"[1, 2]\n" + b"\n".join(rest)
    if case == "header without origin":
        header.pop("origin")
    if case == "tree_size null":
        header["tree_size"] = None
    if case == "log key without public key":
        header["log_keys"] = [{"key_id": "abcd"}]
    first = orjson.dumps(header)
    if case == "checkpoint without note":
        rest = [orjson.dumps({"type": "checkpoint", "tree_size": 1}), *rest]
    if case == "entry is an array":
        rest = [*rest, orjson.dumps({"type": "entry", "leaf_index": 0, "entry": [1]}), b"[3]"]
    return b"\n".join([first, *rest]) + b"\n"


REFUSED = ["header is an array", "header without origin", "tree_size null"]
REFUSED += ["log key without public key"]
VERDICT = ["checkpoint without note", "entry is an array"]


@pytest.mark.parametrize("case", REFUSED + VERDICT)
def test_attack_malformed_export_gets_a_one_line_answer_not_a_traceback(
    logged, case: str, tmp_path: Path
) -> None:
    db, _ = logged
    path = tmp_path / "malformed.jsonl"
    path.write_bytes(_malformed(export(db), case))
    result = runner.invoke(audit_app, ["verify", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    if case in REFUSED:
        assert result.exit_code == 2
        assert result.stderr.startswith("hoviyat: error: refused:")
        assert result.stderr.count("\n") == 1
        with pytest.raises(ExportError):
            verify_export(io.BytesIO(path.read_bytes()))
    else:
        assert result.exit_code == 1
        assert result.stderr.startswith("FAILED:")


def test_attack_kept_checkpoint_file_that_is_not_a_checkpoint_is_refused(
    logged, tmp_path: Path
) -> None:
    db, _ = logged
    export_path, kept = tmp_path / "export.jsonl", tmp_path / "kept.json"
    export_path.write_bytes(blob(export(db)))
    for content in ("[1]", '{"note": 5}', "null", "not json"):
        kept.write_text(content)
        result = runner.invoke(audit_app, ["verify", str(export_path), "--checkpoint", str(kept)])
        assert result.exit_code == 2, (content, result.output)
        assert result.stderr.startswith("hoviyat: error: refused:")


def test_attack_newlines_in_an_entry_cannot_forge_cli_output_lines(logged, tmp_path: Path) -> None:
    db, _ = logged
    lines = export(db)
    target = of_type(lines, "entry")[2]
    target["entry"]["tracking_code"] = "X\nOK: 99 entries, tree size 99"
    path = tmp_path / "forged.jsonl"
    path.write_bytes(blob(lines))
    result = runner.invoke(audit_app, ["verify", str(path)])
    assert result.exit_code == 1
    assert not any(line.startswith("OK") for line in result.output.splitlines())
    assert (
        json.loads(runner.invoke(audit_app, ["verify", "--json", str(path)]).stdout)["ok"] is False
    )


def test_attack_filtered_export_cannot_pass_for_the_whole_log(logged, tmp_path: Path) -> None:
    """Anyone holding the log can prove a chosen subset: the verdict must say it is one."""
    db, _ = logged
    path = tmp_path / "subset.jsonl"
    path.write_bytes(blob(export(db, AuditQuery(actor_id="client-1"))))
    result = runner.invoke(audit_app, ["verify", str(path)])
    assert result.exit_code == 0 and "filtered export" in result.stdout
    as_json = json.loads(runner.invoke(audit_app, ["verify", "--json", str(path)]).stdout)
    assert as_json["ok"] is True and as_json["complete"] is False
