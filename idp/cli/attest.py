"""``hoviyat attest``: check an attestation as a receiver would; the server's signer; dev issuing.

``verify`` trusts only the root certificate given with ``--root``: exit code
0 when every check passes, 1 when the attestation is invalid, 2 when the
command itself cannot run (unreadable root, no attestation given).
"""

from __future__ import annotations

import re
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from idp.attestations.claims import FactSelection, FactSelectionError
from idp.attestations.errors import AttestationInvalid
from idp.attestations.issuer import AttestationRequest, AttestationSettings
from idp.attestations.provision import default_path, pki_source
from idp.attestations.rfc9901 import KeyBindingPolicy, SdJwt
from idp.attestations.service import AttestationService, build_service
from idp.attestations.sharing import prune_shares
from idp.attestations.verifier import AttestationVerifier, http_status_fetcher
from idp.attestations.x5c import load_roots
from idp.cli.output import JsonOption, fail, print_json
from idp.context import Hoviyat, build_hoviyat
from idp.pki.service import build_pki
from idp.settings import get_settings
from idp.storage.engine import Database
from policies.assurance import SUBSTANTIAL
from verifiers.identifiers import IdentifierError, validate_national_code

attest_app = typer.Typer(
    help="Identity attestations (bylaw Article 12): verify them, manage the signer.",
    no_args_is_help=True,
)


def read_attestation(value: str) -> str:
    """``-`` is stdin; an existing file is read; anything else must be the attestation itself."""
    if value == "-":
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError:
            fail("stdin is not text: an attestation is ASCII", 2)
    elif _is_file(value):
        try:
            text = Path(value).read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            fail(f"cannot read {value}: {exc.strerror}", 2)
    elif _COMPACT.match(value):
        text = value
    else:
        fail(f"{value[:60]}: no such file, and not an attestation (JWT or SD-JWT)", 2)
    text = text.strip()
    if not text:
        fail("the attestation is empty", 2)
    return text


_COMPACT = re.compile(r"^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(~[A-Za-z0-9_.-]*)*\s*$")


def _is_file(value: str) -> bool:
    try:
        return Path(value).is_file()
    except OSError:  # a name too long for the file system is an attestation, not a path
        return False


@attest_app.command("verify")
def verify_command(
    attestation: Annotated[
        str, typer.Argument(help="FILE, '-' for stdin, or the attestation itself")
    ],
    root: Annotated[Path, typer.Option("--root", help="PEM file of the Hoviyat root certificate")],
    status_online: bool = typer.Option(
        False, "--status-online", help="also fetch the status list to see if it was revoked"
    ),
    lang: str = typer.Option("fa", "--lang", help="report language: fa or en"),
    audience: str | None = typer.Option(
        None, help="who you are: the aud expected (and in the KB-JWT)"
    ),
    nonce: str | None = typer.Option(None, help="expected KB-JWT nonce (with --audience)"),
    require_key_binding: bool = typer.Option(
        False, "--require-key-binding", help="reject an SD-JWT presented without Key Binding"
    ),
    json_output: bool = JsonOption,
) -> None:
    """Check signature, chain to the root, validity, disclosures, key binding (and status)."""
    if lang not in ("fa", "en"):
        fail("--lang must be fa or en", 2)
    if require_key_binding and not (audience and nonce):
        fail("--require-key-binding needs --audience and --nonce", 2)
    try:
        roots = load_roots(root)
    except (OSError, ValueError) as exc:
        fail(f"cannot read the root certificate {root}: {exc}", 2)
    text = read_attestation(attestation)
    verifier = AttestationVerifier(
        roots, status_fetcher=http_status_fetcher() if status_online else None
    )
    report = verifier.verify(
        text,
        key_binding=KeyBindingPolicy(required=require_key_binding, audience=audience, nonce=nonce),
        check_status=status_online,
        audience=audience,
    )
    if json_output:
        print_json(report.as_dict())
    else:
        sys.stdout.write(report.render("en" if lang == "en" else "fa") + "\n")
    raise typer.Exit(0 if report.valid else 1)


def _service(hoviyat: Hoviyat) -> AttestationService:
    settings = hoviyat.settings
    return build_service(
        AttestationSettings(),
        issuer_url=settings.issuer,
        db=hoviyat.db,
        signer_path=default_path(settings.data_dir),
        kek=hoviyat.secrets.key_encryption_key,
        pepper=hoviyat.secrets.subject_pepper,
        source=lambda: pki_source(
            build_pki(settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper)
        ),
    )


@attest_app.command("signer")
def signer_command(json_output: bool = JsonOption) -> None:
    """Obtain (or renew) the attestation signing certificate from the Hoviyat CA now."""
    try:
        hoviyat = build_hoviyat(get_settings())
    except RuntimeError as exc:
        fail(str(exc))
    try:
        service = _service(hoviyat)
    except Exception as exc:
        fail(f"could not obtain the attestation certificate: {exc}")
    finally:
        hoviyat.close()
    leaf = service.bundle.signer.certificate
    summary: dict[str, Any] = {
        "subject": leaf.subject.rfc4514_string(),
        "serial": format(leaf.serial_number, "x"),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "root": service.root.subject.rfc4514_string(),
        "bundle": str(AttestationSettings().signer_file or default_path(get_settings().data_dir)),
    }
    if json_output:
        print_json(summary)
    else:
        sys.stdout.write("".join(f"{key}: {value}\n" for key, value in summary.items()))


@attest_app.command("issue")
def issue_command(
    national_code: str = typer.Option(..., "--national-code", help="the holder (development)"),
    purpose: str = typer.Option("development test", help="what the attestation is for"),
    fact: Annotated[
        list[str] | None, typer.Option("--fact", help="a fact to include (repeatable)")
    ] = None,
    age_over: Annotated[
        list[int] | None, typer.Option("--age-over", help="an age threshold (repeatable)")
    ] = None,
    entity: str | None = typer.Option(None, "--entity", help="national id for 'representation'"),
    recipient: str | None = typer.Option(None, help="named recipient (aud)"),
    days: int = typer.Option(30, help="validity in days"),
    json_output: bool = JsonOption,
) -> None:
    """Development only: issue an attestation for a person of the synthetic registry."""
    settings = get_settings()
    if settings.is_production:
        fail("'attest issue' is for development; in production holders log in and ask")
    try:
        code = validate_national_code(national_code)
        selection = FactSelection.of(fact or ["alive"], age_over or [], entity)
        request = AttestationRequest(purpose, selection, recipient, None, timedelta(days=days))
    except (IdentifierError, FactSelectionError, ValueError) as exc:
        fail(str(exc), 2)
    hoviyat = build_hoviyat(settings)
    try:
        person = hoviyat.registries.civil.person(code)
        if person is None:
            fail(f"the registry has no person {code}")
        legal_entity = hoviyat.registries.deeds.entity(entity) if entity else None
        service = _service(hoviyat)
        issued, _ = service.issue(
            person, request, level=SUBSTANTIAL, entity=legal_entity, actor_type="operator"
        )
    except FactSelectionError as exc:
        fail(str(exc))
    finally:
        hoviyat.close()
    answer = {"id": issued.id, "tracking_code": issued.tracking_code, "jwt": issued.jwt}
    answer["sd_jwt"] = issued.sd_jwt
    if json_output:
        print_json(answer)
    else:
        sys.stdout.write(issued.sd_jwt + "\n")


@attest_app.command("present")
def present_command(
    attestation: Annotated[str, typer.Argument(help="the SD-JWT: FILE, '-' or the text")],
    claim: Annotated[
        list[str] | None, typer.Option("--claim", help="a fact to disclose (repeatable)")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="holder's private key (PEM) for Key Binding")
    ] = None,
    audience: Annotated[str | None, typer.Option(help="the receiver, for Key Binding")] = None,
    nonce: Annotated[str | None, typer.Option(help="the receiver's nonce, for Key Binding")] = None,
) -> None:
    """Holder side: keep only the chosen facts (RFC 9901 §7.2), optionally key-bound (§4.3)."""
    try:
        presentation = SdJwt.parse(read_attestation(attestation)).select(claim or [])
    except AttestationInvalid as exc:
        fail(f"not an SD-JWT: {exc.detail}", 2)
    if key is not None:
        if not (audience and nonce):
            fail("Key Binding (--key) needs --audience and --nonce", 2)
        try:
            holder = ECKey.import_key(key.read_bytes())
        except (OSError, ValueError, JoseError) as exc:
            fail(f"cannot read the holder key {key}: {exc}", 2)
        presentation = presentation.bind(
            holder, audience=audience, nonce=nonce, issued_at=int(time.time())
        )
    sys.stdout.write(presentation.serialize() + "\n")


@attest_app.command("prune")
def prune_command(json_output: bool = JsonOption) -> None:
    """Delete shared presentations past their expiry (run daily, e.g. from cron)."""
    database = Database(get_settings().resolved_database_url)
    try:
        with database.session() as session:
            removed = prune_shares(session)
    finally:
        database.dispose()
    if json_output:
        print_json({"shares_removed": removed})
    else:
        sys.stdout.write(f"removed {removed} expired shared presentation(s)\n")
