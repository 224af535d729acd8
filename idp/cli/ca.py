"""``hoviyat ca``: the certificate authority's hierarchy, profiles and issuance."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import ValidationError

from ca.hierarchy import HierarchyError
from ca.keys import KeyStoreError
from ca.passphrase import ensure_development_passphrase
from ca.settings import CASettings
from idp.cli.operator import operator_name
from idp.cli.output import JsonOption, console, fail, print_json, print_table
from idp.context import registry_options
from idp.pki.documents import certificate_document
from idp.pki.hierarchy import Hierarchy
from idp.pki.refusals import CertificateRefused
from idp.pki.registration import Pki, Request
from idp.pki.service import build_pki, open_keys
from idp.pki.subjects import SubjectReference
from idp.settings import Settings, get_settings
from idp.storage.certificate_store import certificate_records
from idp.storage.engine import Database
from policies.certificate_profiles import load_profiles
from verifiers.registry.base import open_registries

T = TypeVar("T")
ca_app = typer.Typer(help="Certificate authority: hierarchy, profiles, issuance.")


@contextmanager
def _hierarchy(settings: Settings) -> Iterator[Hierarchy]:
    try:
        ca_settings = CASettings()
    except ValidationError as exc:
        fail(f"CA settings: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    db = Database(settings.resolved_database_url)
    try:
        yield Hierarchy(
            db,
            open_keys(settings, ca_settings),
            settings.issuer,
            crl_partitions=ca_settings.crl_partitions,
            operator=operator_name(),
        )
    except (HierarchyError, KeyStoreError) as exc:
        fail(str(exc))
    finally:
        db.dispose()


@contextmanager
def _pki(settings: Settings) -> Iterator[Pki]:
    db = Database(settings.resolved_database_url)
    registries = open_registries(settings.registry_adapter, registry_options(settings))
    try:
        yield build_pki(settings, db, registries)
    except (HierarchyError, KeyStoreError) as exc:
        fail(str(exc))
    except CertificateRefused as exc:
        fail(f"refused ({exc.slug}): {exc.detail}")
    finally:
        registries.close()
        db.dispose()


def _read(path: Path) -> bytes:
    try:
        return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def _load(path: Path, parse: Callable[[bytes], T], what: str) -> T:
    """``parse`` of the file's bytes; a one-line failure saying ``path`` ``what``."""
    try:
        return parse(_read(path))
    except ValueError as exc:
        fail(f"{path} {what}: {exc}")


def _pem(certificates: list[x509.Certificate] | tuple[x509.Certificate, ...]) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates)


@ca_app.command("init")
def init_command(
    root_only: bool = typer.Option(False, "--root-only", help="create only the root (offline)"),
    json_output: bool = JsonOption,
) -> None:
    """Create the root CA (P-384) and the issuing CAs under it; re-running changes nothing."""
    from idp.cli.setup import db_upgrade

    settings = get_settings()
    ca_settings = CASettings()
    db_upgrade(settings)
    made = None
    if not settings.is_production:
        made = ensure_development_passphrase(ca_settings, settings.data_dir)
    with _hierarchy(settings) as hierarchy:
        created = hierarchy.init(root_only=root_only)
        rows = [
            {
                "name": row.name,
                "generation": row.generation,
                "key_id": row.key_id,
                "active": row.active,
                "key_ref": row.key_ref,
                "certified": row.certificate is not None,
            }
            for row in hierarchy.rows()
        ]
    if json_output:
        print_json({"created": created, "authorities": rows, "passphrase_file": made})
        return
    if made:
        console.print(f"development CA passphrase written to {made} (0600)")
    console.print(f"created: {', '.join(created) if created else 'nothing (already initialised)'}")
    print_table(
        "Certificate authorities",
        ["name", "generation", "key id", "active", "key"],
        [[r["name"], r["generation"], r["key_id"], r["active"], r["key_ref"]] for r in rows],
    )


@ca_app.command("profiles")
def profiles_command(json_output: bool = JsonOption) -> None:
    """List the certificate profiles."""
    profiles = load_profiles()
    if json_output:
        print_json([p.to_json() for p in profiles.values()])
        return
    print_table(
        "Certificate profiles",
        ["name", "issuing CA", "subject", "days", "keys", "lint"],
        [
            [p.name, p.issuing_ca, p.subject, p.validity_days, " ".join(p.key_types), p.lint]
            for p in profiles.values()
        ],
    )


@ca_app.command("issue")
def issue_command(
    csr: Annotated[Path, typer.Option("--csr", help="PKCS#10 request, PEM or DER ('-' for stdin)")],
    profile: str = typer.Option(..., "--profile", help="profile name ('ca profiles')"),
    national_code: str | None = typer.Option(None, "--subject-national-code"),
    national_id: str | None = typer.Option(None, "--subject-national-id"),
    dns: Annotated[
        list[str] | None, typer.Option("--dns", help="approved DNS name (repeat)")
    ] = None,
    service_name: str | None = typer.Option(
        None, "--service-name", help="CN for service profiles, or a back-office system's name"
    ),
    issuing_ca: str | None = typer.Option(None, "--issuing-ca", help="for ocsp-responder only"),
    reason: str | None = typer.Option(None, "--reason", help="why (kept in the audit log)"),
    operator: str = typer.Option("cli", "--operator", help="who asks (kept in the audit log)"),
) -> None:
    """Issue a certificate; prints the chain (leaf first) as PEM."""
    settings = get_settings()
    request = Request(
        csr=_read(csr),
        profile=profile,
        subject=SubjectReference(national_code, national_id, tuple(dns or ()), service_name),
        requested_by=operator,
        request_reason=reason,
        actor_type="operator",
        issuing_ca=issuing_ca,
    )
    with _pki(settings) as pki:
        issued = pki.request_certificate(request)
    sys.stdout.write(issued.pem_chain())


@ca_app.command("list")
def list_command(
    limit: int = typer.Option(100, min=1, max=10_000),
    profile: str | None = typer.Option(None, "--profile"),
    status: str | None = typer.Option(None, "--status", help="pending|issued|revoked|failed"),
    json_output: bool = JsonOption,
) -> None:
    """List certificates, newest first."""
    settings = get_settings()
    db = Database(settings.resolved_database_url)
    try:
        records = certificate_records(db, limit, profile, status)
        summaries = [certificate_document(record) for record in records]
    finally:
        db.dispose()
    if json_output:
        print_json(summaries)
        return
    print_table(
        "Certificates",
        ["serial", "status", "profile", "subject", "not after"],
        [[s["serial"], s["status"], s["profile"], s["subject"], s["not_after"]] for s in summaries],
    )


@ca_app.command("csr")
def csr_command(
    issuing: str = typer.Option(..., "--issuing", help="persons | organisations | infrastructure"),
    out: Annotated[Path | None, typer.Option("--out", help="write here, not stdout")] = None,
) -> None:
    """A CSR for an issuing CA key, for the offline root to sign ('ca sign-issuing')."""
    settings = get_settings()
    with _hierarchy(settings) as hierarchy:
        pem = hierarchy.issuing_csr(issuing).public_bytes(Encoding.PEM).decode()
    if out:
        out.write_text(pem)
    else:
        sys.stdout.write(pem)


@ca_app.command("sign-issuing")
def sign_issuing_command(
    csr: Annotated[Path, typer.Option("--csr", help="the issuing CA's CSR ('ca csr')")],
    online_url: Annotated[
        str,
        typer.Option(
            "--online-url",
            help="the online machine's public base URL (its HOVIYAT_ISSUER): the issuing "
            "CA's AIA and CDP point there, where the root certificate and CRL are served",
        ),
    ],
) -> None:
    """On the root's machine: certify an issuing CA key; prints its certificate and the root."""
    request = _load(csr, x509.load_pem_x509_csr, "is not a PEM certificate request")
    with _hierarchy(get_settings()) as hierarchy:
        certificate = hierarchy.sign_issuing(request, online_url=online_url)
        root = hierarchy.issuing_ca("root").certificate
    sys.stdout.write(_pem([certificate, root]))


@ca_app.command("install-issuing")
def install_issuing_command(
    chain: Annotated[Path, typer.Option("--chain", help="output of 'ca sign-issuing'")],
) -> None:
    """On the server: install an issuing CA certificate signed by the offline root."""
    certificates = _load(chain, x509.load_pem_x509_certificates, "holds no PEM certificates")
    with _hierarchy(get_settings()) as hierarchy:
        name = hierarchy.install_issuing(certificates)
    console.print(f"issuing CA {name} installed and active")


@ca_app.command("rollover")
def rollover_command(
    issuing: str = typer.Option(..., "--issuing", help="persons | organisations | infrastructure"),
) -> None:
    """A new key for an issuing CA; certificates signed by the old key stay valid."""
    settings = get_settings()
    with _hierarchy(settings) as hierarchy:
        ca = hierarchy.rollover(issuing)
    console.print(f"{ca.name} generation {ca.generation} active, key id {ca.key_id}")


@ca_app.command("fail-pending")
def fail_pending_command(
    older_than_minutes: int = typer.Option(10, min=1, help="age of the intents to give up on"),
    operator: str = typer.Option("cli", "--operator", help="who decides (kept in the audit log)"),
    json_output: bool = JsonOption,
) -> None:
    """Mark issuance intents a crashed process never completed as failed (serials kept)."""
    from datetime import timedelta

    from idp.storage.certificate_store import fail_stale_intents

    settings = get_settings()
    db = Database(settings.resolved_database_url)
    try:
        serials = fail_stale_intents(db, timedelta(minutes=older_than_minutes), operator)
    finally:
        db.dispose()
    if json_output:
        print_json({"failed": serials})
        return
    console.print(f"{len(serials)} pending intent(s) marked failed")
    for serial in serials:
        console.print(f"  {serial}")
