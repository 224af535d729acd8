"""``hoviyat audit ...``: the auditor's and operator's view of the tamper-evident log."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from idp.audit import rfc9162, tree
from idp.audit.checkpoints import latest_checkpoint, log_origin, make_checkpoint
from idp.audit.export import export_lines
from idp.audit.render import entry_json
from idp.audit.search import AuditQuery, record_subject_search, search, subject_hashes
from idp.audit.sequencer import read_head, sequence_pending
from idp.audit.verify import verify_export
from idp.cli.operator import operator_name
from idp.cli.output import fail, print_json, print_table
from idp.secrets import ServerSecrets, load_secrets
from idp.settings import get_settings
from idp.storage.audit_entries import newest_entries
from idp.storage.engine import Database
from idp.storage.models import AuditEntry
from idp.tracking import new_tracking_code
from verifiers.identifiers import IdentifierError

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


def _open() -> tuple[Database, ServerSecrets, str]:
    settings = get_settings()
    try:
        secrets = load_secrets(settings.resolved_secrets_file)
    except RuntimeError as exc:
        fail(str(exc))
    return Database(settings.resolved_database_url), secrets, log_origin(settings.issuer)


def _show(entries: list[AuditEntry], as_json: bool) -> None:
    if as_json:
        print_json([entry_json(e) for e in entries])
        return
    print_table(
        "Audit entries",
        ["leaf", "time", "tracking code", "event", "actor", "service", "outcome"],
        [
            (
                "-" if e.leaf_index is None else e.leaf_index,
                e.created_at.isoformat(timespec="seconds"),
                e.tracking_code,
                e.event_type,
                f"{e.actor_type}:{e.actor_id or '-'}",
                e.service_code or "-",
                e.outcome,
            )
            for e in entries
        ],
    )


def _query(**filters: Any) -> AuditQuery:
    return AuditQuery(**{k: v for k, v in filters.items() if v is not None})


def _search(query: AuditQuery) -> list[AuditEntry]:
    db, secrets, _ = _open()
    try:
        hashes = subject_hashes(secrets.subject_pepper, query)
        with db.session() as session:
            found = list(search(session, secrets.subject_pepper, query))
            record_subject_search(
                session,
                hashes,
                tracking_code=new_tracking_code(),
                actor_type="administrator",
                actor_id=operator_name(),
            )
            return found
    except IdentifierError as exc:
        fail(f"{exc.field}: {exc.message}")
    finally:
        db.dispose()


@audit_app.command("list")
def list_command(
    limit: int = typer.Option(50, min=1, max=1000, help="how many of the latest entries"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """The latest entries (verifications, logins, tokens, certificates...), oldest first."""
    db, _, _ = _open()
    with db.session() as session:
        newest = newest_entries(session, limit)
    db.dispose()
    _show(list(reversed(newest)), as_json)


@audit_app.command("search")
def search_command(
    since: datetime | None = typer.Option(None, help="from this time (ISO 8601, inclusive)"),
    until: datetime | None = typer.Option(None, help="up to this time (exclusive)"),
    event_type: str | None = typer.Option(None, help="e.g. verification, token.issued"),
    client: str | None = typer.Option(None, help="actor id: the client or operator"),
    service_code: str | None = typer.Option(None),
    tracking_code: str | None = typer.Option(None),
    outcome: str | None = typer.Option(None),
    national_code: str | None = typer.Option(None, help="hashed with the pepper, never stored"),
    national_id: str | None = typer.Option(None, help="hashed with the pepper, never stored"),
    limit: int = typer.Option(100, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """Entries matching every filter given."""
    query = _query(
        since=since,
        until=until,
        event_type=event_type,
        actor_id=client,
        service_code=service_code,
        tracking_code=tracking_code,
        outcome=outcome,
        national_code=national_code,
        national_id=national_id,
        limit=limit,
    )
    _show(_search(query), as_json)


@audit_app.command("export")
def export_command(
    out: Path = typer.Option(..., "--out", help="JSON lines file to write"),
    event_type: str | None = typer.Option(None, help="export only these (with proofs)"),
    client: str | None = typer.Option(None),
    service_code: str | None = typer.Option(None),
    national_code: str | None = typer.Option(None),
) -> None:
    """Sign a checkpoint and export the log (all of it, or a filtered part with proofs)."""
    db, secrets, origin = _open()
    filters = {
        "event_type": event_type,
        "actor_id": client,
        "service_code": service_code,
        "national_code": national_code,
    }
    query = _query(**filters) if any(v is not None for v in filters.values()) else None
    lines = 0
    try:
        with out.open("wb") as handle:
            for line in export_lines(
                db,
                key_encryption_key=secrets.key_encryption_key,
                pepper=secrets.subject_pepper,
                origin=origin,
                actor_type="administrator",
                actor_id=operator_name(),
                query=query,
            ):
                handle.write(line)
                lines += 1
    except IdentifierError as exc:
        fail(f"{exc.field}: {exc.message}")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    finally:
        db.dispose()
    typer.echo(f"wrote {out} ({lines} lines)")


@audit_app.command("checkpoint")
def checkpoint_command(
    out: Path | None = typer.Option(None, "--out", help="also save the checkpoint as JSON"),
    every: float | None = typer.Option(
        None, "--every", min=1.0, help="keep signing one every N seconds"
    ),
) -> None:
    """Sequence pending entries and sign a checkpoint (tree size, root hash, time)."""
    db, secrets, origin = _open()
    try:
        while True:
            record = make_checkpoint(db, secrets.key_encryption_key, origin)
            document = record.to_json()
            if out is not None:
                out.write_text(json.dumps(document, indent=2) + "\n")
            print_json(document)
            if every is None:
                return
            time.sleep(every)
    finally:
        db.dispose()


@audit_app.command("certify")
def certify_command() -> None:
    """Have the infrastructure CA certify the checkpoint key (service-signing profile)."""
    from ca.hierarchy import HierarchyError
    from ca.keys import KeyStoreError
    from idp.audit.certificate import certify_log_key
    from idp.context import registry_options
    from idp.pki.refusals import CertificateRefused
    from idp.pki.service import build_pki
    from verifiers.registry.base import open_registries

    settings = get_settings()
    db, secrets, _ = _open()
    registries = open_registries(settings.registry_adapter, registry_options(settings))
    try:
        pki = build_pki(settings, db, registries, secrets.subject_pepper)
        key_id, chain = certify_log_key(
            db, pki, secrets.key_encryption_key, requested_by=operator_name()
        )
    except (CertificateRefused, HierarchyError, KeyStoreError) as exc:
        fail(f"the CA did not certify the audit key: {exc}")
    finally:
        registries.close()
        db.dispose()
    print_json({"key_id": key_id, "certificate_chain_pem": chain})


@audit_app.command("proof")
def proof_command(
    leaf_index: int | None = typer.Option(None, help="inclusion proof of this entry"),
    first: int | None = typer.Option(None, "--from", help="consistency proof from this size"),
    tree_size: int | None = typer.Option(None, help="tree size (default: the latest checkpoint)"),
) -> None:
    """An RFC 9162 inclusion proof (--leaf-index) or consistency proof (--from)."""
    if (leaf_index is None) == (first is None):
        fail("give exactly one of --leaf-index and --from")
    db, _, _ = _open()
    try:
        sequence_pending(db)
        with db.session() as session:
            current = read_head(session).tree_size
            latest = latest_checkpoint(session)
            size = tree_size if tree_size is not None else (latest.tree_size if latest else 0)
            if leaf_index is not None:
                path = tree.inclusion_proof(session, leaf_index, size, current)
                result: dict[str, Any] = {
                    "leaf_index": leaf_index,
                    "tree_size": size,
                    "leaf_hash": (tree.leaf_hash_at(session, leaf_index) or b"").hex(),
                    "inclusion_proof": [h.hex() for h in path],
                }
            else:
                assert first is not None
                path = tree.consistency_proof(session, first, size, current)
                result = {
                    "first": first,
                    "second": size,
                    "consistency_proof": [h.hex() for h in path],
                }
            result["root_hash"] = tree.root_hash(session, size, current).hex()
    except rfc9162.ProofError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    print_json(result)


def _one_line(message: str) -> str:
    """Problems quote the export's own text: its control characters must not forge lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


@audit_app.command("verify")
def verify_command(
    export: Path = typer.Argument(..., help="a file from 'hoviyat audit export'"),
    root: Path | None = typer.Option(None, "--root", help="root CA certificate (PEM)"),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="an earlier checkpoint (JSON) the export must extend"
    ),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """Verify an export offline; exit 1 names the first bad entry, exit 2 refuses a non-export."""
    try:
        root_pem = root.read_bytes() if root else None
        earlier = json.loads(checkpoint.read_text()) if checkpoint else None
        if checkpoint and not isinstance(earlier, dict):
            fail(f"refused: {checkpoint} is not a checkpoint (JSON with a note)", 2)
        with export.open("rb") as handle:
            report = verify_export(handle, root_pem=root_pem, earlier_checkpoint=earlier)
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    except ValueError as exc:  # ExportError, or a --checkpoint file that is not JSON
        fail(f"refused: {exc}", 2)
    first_bad = report.first_bad
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "tree_size": report.tree_size,
                "entries": report.entries,
                "complete": report.complete,
                "checkpoints": report.checkpoints,
                "trusted_by": report.trusted_by,
                "first_bad": first_bad.message if first_bad else None,
                "problems": [p.message for p in report.problems],
            }
        )
    elif report.ok:
        # A filtered export proves what it holds, not that nothing was left out: say so.
        scope = "" if report.complete else " (a filtered export: other entries are not shown)"
        typer.echo(
            f"OK: {report.entries} entries, tree size {report.tree_size}, "
            f"{report.checkpoints} checkpoints verified against {report.trusted_by}{scope}"
        )
    if first_bad is not None:
        if not as_json:
            typer.echo(f"FAILED: {_one_line(first_bad.message)}", err=True)
            if len(report.problems) > 1:
                typer.echo(f"({len(report.problems) - 1} further problems)", err=True)
        raise typer.Exit(1)
