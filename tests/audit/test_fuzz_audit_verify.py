"""Fuzzing the offline verifier: any file gets a verdict or a refusal, never a traceback.

Three sources of input: random bytes, random JSON lines, and mutations of a
real export (made once by the real log on SQLite). ``verify_export`` may only
return a report or raise :class:`ExportError`; the CLI may only exit 0, 1 or 2
with its own one-line messages.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from audit_helpers import PEPPER, append_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from idp.audit.canonical import CanonicalizationError, canonicalize
from idp.audit.checkpoints import make_checkpoint
from idp.audit.export import export_lines
from idp.audit.search import AuditQuery
from idp.audit.verify import ExportError, VerifyReport, verify_export
from idp.cli.audit import audit_app
from idp.storage.engine import Database

KEK = b"k" * 32
ORIGIN = "hoviyat.test/audit"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
runner = CliRunner()


def _export(db: Database, query: AuditQuery | None) -> list[Any]:
    blob = b"".join(
        export_lines(
            db,
            key_encryption_key=KEK,
            pepper=PEPPER,
            origin=ORIGIN,
            actor_type="administrator",
            actor_id="fuzzer",
            query=query,
        )
    )
    return [orjson.loads(line) for line in blob.splitlines()]


@pytest.fixture(scope="module")
def exports(
    _sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[Any]]:
    path = tmp_path_factory.mktemp("fuzz") / "hoviyat.db"
    shutil.copyfile(_sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    try:
        append_events(db, 6)
        make_checkpoint(db, KEK, ORIGIN)
        append_events(db, 3)
        return {
            "complete": _export(db, None),
            "filtered": _export(db, AuditQuery(actor_id="client-1")),
        }
    finally:
        db.dispose()


def verdict(data: bytes) -> VerifyReport | None:
    """The verifier's answer; None for a refusal. Any other exception fails the test."""
    try:
        return verify_export(io.BytesIO(data))
    except ExportError:
        return None


def encode(lines: list[Any]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["type", "format", "version", "origin", "tree_size", "complete", "log_keys", "note",
     "key_id", "leaf_index", "leaf_hash", "entry", "inclusion_proof", "consistency_proof",
     "public_key_pem", "certificate_chain_pem", "tracking_code", "outcome", "v", "detail"]
)  # fmt: skip


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_get_a_verdict_or_a_refusal(data: bytes) -> None:
    report = verdict(data)
    assert report is None or not report.ok


@FUZZ
@given(st.lists(json_values, min_size=1, max_size=5))
def test_fuzz_random_json_lines_get_a_verdict_or_a_refusal(lines: list[Any]) -> None:
    report = verdict(encode(lines))
    assert report is None or not report.ok


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = orjson.loads(orjson.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


def _differ(old: Any, new: Any) -> bool:
    """Different as RFC 8785 sees them (1 and 1.0 are one number)."""
    try:
        return canonicalize(old) != canonicalize(new)
    except CanonicalizationError:
        return True


# Fields no signature or hash covers: descriptions, the export time, a certificate
# chain unused without --root, and a checkpoint's key id (a hint: every key is tried).
_UNCOVERED = {"exported_at", "entry_encoding", "leaf_hash", "checkpoint_format"}


def _covered(lines: list[Any], path: tuple[Any, ...]) -> bool:
    number, rest = path[0], path[1:]
    if number == 0:
        return not (rest and (rest[0] in _UNCOVERED or "certificate_chain_pem" in rest))
    kind = lines[number].get("type") if isinstance(lines[number], dict) else None
    return not (kind == "checkpoint" and rest[:1] == ("key_id",))


@st.composite
def mutated(draw: st.DrawFn, lines: list[Any]) -> tuple[list[Any], bool]:
    """(mutated lines, whether a covered value was replaced by a different one)."""
    lines = list(lines)
    operation = draw(st.sampled_from(["replace", "drop_key", "add_key", "drop", "dup", "swap"]))
    number = draw(st.integers(0, len(lines) - 1))
    line = lines[number]
    if operation == "replace":
        path = draw(st.sampled_from(_paths(line)))
        old = line
        for step in path:
            old = old[step]
        new = draw(json_values)
        lines[number] = _set(line, path, new)
        return lines, _differ(old, new) and _covered(lines, (number, *path))
    if operation in ("drop_key", "add_key") and isinstance(line, dict):
        copy = dict(line)
        if operation == "drop_key" and copy:
            copy.pop(draw(st.sampled_from(sorted(copy))))
        else:
            copy[draw(field_names)] = draw(json_values)
        lines[number] = copy
    elif operation == "drop":
        del lines[number]
    elif operation == "dup":
        lines.insert(draw(st.integers(0, len(lines))), line)
    elif operation == "swap":
        other = draw(st.integers(0, len(lines) - 1))
        lines[number], lines[other] = lines[other], lines[number]
    return lines, False


@pytest.mark.parametrize("kind", ["complete", "filtered"])
def test_the_unmutated_exports_verify(exports: dict[str, list[Any]], kind: str) -> None:
    report = verdict(encode(exports[kind]))
    assert report is not None and report.ok, report and [p.message for p in report.problems]


@pytest.mark.parametrize("kind", ["complete", "filtered"])
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutated_real_export_gets_a_verdict_or_a_refusal(
    exports: dict[str, list[Any]], kind: str, data: st.DataObject
) -> None:
    lines, changed_value = data.draw(mutated(exports[kind]))
    report = verdict(encode(lines))
    if changed_value:
        assert report is None or not report.ok


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_cli_answers_in_one_line_with_exit_0_1_or_2(
    exports: dict[str, list[Any]], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    lines, _ = data.draw(mutated(exports["complete"]))
    raw = data.draw(
        st.sampled_from([encode(lines), encode(lines)[: data.draw(st.integers(0, 300))]])
    )
    path = tmp_path_factory.mktemp("cli") / "export.jsonl"
    path.write_bytes(raw)
    result = runner.invoke(audit_app, ["verify", str(path)])
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 2:
        assert result.stderr.startswith("hoviyat: error: refused:")
        assert result.stderr.count("\n") == 1
