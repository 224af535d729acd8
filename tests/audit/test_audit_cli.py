"""``hoviyat audit``: list, search, checkpoint, proof, export and offline verify through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import append_events
from sqlalchemy import text
from typer.testing import CliRunner

from idp.cli.audit import audit_app
from idp.secrets import ensure_secrets
from idp.storage.engine import Database

runner = CliRunner()


@pytest.fixture
def configured(
    db: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    secrets = ensure_secrets(tmp_path / "secrets.json")
    monkeypatch.setenv("HOVIYAT_DATABASE_URL", database_url)
    monkeypatch.setenv("HOVIYAT_SECRETS_FILE", str(tmp_path / "secrets.json"))
    # entries hashed with this installation's pepper, so search by national code works
    import audit_helpers

    monkeypatch.setattr(audit_helpers, "PEPPER", secrets.subject_pepper)
    yield db


def run(*args: str) -> str:
    result = runner.invoke(audit_app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_list_search_checkpoint_proof_export_verify(configured: Database, tmp_path: Path) -> None:
    db = configured
    append_events(db, 6)
    listed = json.loads(run("list", "--json"))
    assert [e["event_type"] for e in listed] == ["verification"] * 6
    assert all(e["tracking_code"] and e["outcome"] in {"match", "no_match"} for e in listed)

    found = json.loads(run("search", "--national-code", "0499370899", "--outcome", "match",
                           "--json"))  # fmt: skip
    assert len(found) == 3

    earlier = tmp_path / "earlier.json"
    run("checkpoint", "--out", str(earlier))
    # six events and the search by national code, itself recorded
    assert json.loads(earlier.read_text())["tree_size"] == 7
    proof = json.loads(run("proof", "--leaf-index", "3"))
    assert proof["tree_size"] == 7 and len(proof["inclusion_proof"]) == 3

    append_events(db, 3)
    export = tmp_path / "export.jsonl"
    run("export", "--out", str(export))
    out = run("verify", str(export), "--checkpoint", str(earlier))
    assert out.startswith("OK: 11 entries")

    with db.session() as session:
        session.execute(text("UPDATE audit_entries SET actor_id = 'someone' WHERE leaf_index = 2"))
    run("export", "--out", str(export))
    result = runner.invoke(audit_app, ["verify", str(export), "--checkpoint", str(earlier)])
    assert result.exit_code == 1
    assert "leaf index 2" in result.stderr and "altered" in result.stderr


def test_errors_are_one_line_and_exit_non_zero(configured: Database, tmp_path: Path) -> None:
    result = runner.invoke(audit_app, ["verify", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and result.stderr.startswith("hoviyat: error: cannot read")
    result = runner.invoke(audit_app, ["search", "--national-code", "12"])
    assert result.exit_code == 1 and "national_code" in result.stderr
    result = runner.invoke(audit_app, ["proof", "--leaf-index", "5", "--tree-size", "3"])
    assert result.exit_code == 1 and "beyond the log" in result.stderr
    (tmp_path / "junk.jsonl").write_text("not json\n")
    result = runner.invoke(audit_app, ["verify", str(tmp_path / "junk.jsonl")])
    assert result.exit_code == 2 and "export header" in result.stderr
