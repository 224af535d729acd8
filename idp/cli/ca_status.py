"""``hoviyat ca revoke``, ``crl``, ``root-crl``, ``import-crl``, ``ocsp-responder``.

``root-crl`` runs on the offline root's machine and ``import-crl`` on the online
one, which then serves the root's CRL at ``/crl/root.crl`` (the CDP of every
issuing CA certificate). ``ocsp-responder`` is the ceremony that issues a CA
generation's delegated responder certificate. ``register(ca_app)`` adds the
commands to the ``ca`` group. The operator is recorded in the audit entry as
the local user name (``$USER``), with the ``--comment`` as the reason given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.serialization import Encoding

from ca import names
from ca.hierarchy import HierarchyError
from ca.keys import KeyStoreError
from ca.revocation import REVOCATION_REASONS, InvalidReason, parse_reason
from ca.serials import parse_serial, serial_hex
from idp.cli.operator import operator_name
from idp.cli.output import JsonOption, console, fail, print_json
from idp.pki.crl_publisher import CRLImportRefused, CRLPublisher, CRLUnavailable, UnknownCRL
from idp.pki.hierarchy import Hierarchy
from idp.pki.revocation import (
    Actor,
    CertificateNotFound,
    RevocationRefused,
    issuers_touched,
    revoke,
)
from idp.pki.service import open_keys
from idp.settings import get_settings
from idp.storage.crls import CRLRecord
from idp.storage.engine import Database


@contextmanager
def _publisher() -> Iterator[CRLPublisher]:
    settings = get_settings()
    db = Database(settings.resolved_database_url)
    try:
        hierarchy = Hierarchy(db, open_keys(settings), settings.issuer, operator=operator_name())
        yield CRLPublisher(db, hierarchy)
    except (HierarchyError, KeyStoreError, CRLUnavailable, UnknownCRL) as exc:
        fail(str(exc))
    finally:
        db.dispose()


def _operator(comment: str | None) -> Actor:
    return Actor("operator", operator_name(), comment)


def revoke_command(
    serial: str = typer.Argument(..., help="serial number, hexadecimal"),
    reason: str = typer.Option(
        ..., "--reason", help="RFC 5280 reason: " + ", ".join(REVOCATION_REASONS)
    ),
    invalidity_date: Annotated[
        datetime | None,
        typer.Option(
            "--invalidity-date",
            help="when the key was known or suspected compromised (ISO 8601, UTC if no zone)",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ] = None,
    comment: str | None = typer.Option(None, "--comment", help="why; kept in the audit log"),
    json_output: bool = JsonOption,
) -> None:
    """Revoke a certificate; its CRLs are reissued and OCSP answers revoked at once."""
    number = parse_serial(serial)
    if number is None:
        fail(f"{serial!r} is not a hexadecimal serial number")
    try:
        parsed_reason = parse_reason(reason)
    except InvalidReason as exc:
        fail(str(exc))
    if invalidity_date is not None and invalidity_date.tzinfo is None:
        invalidity_date = invalidity_date.replace(tzinfo=UTC)
    with _publisher() as publisher:
        try:
            outcome = revoke(
                publisher.db,
                number,
                parsed_reason,
                _operator(comment),
                invalidity_date=invalidity_date,
            )
        except CertificateNotFound as exc:
            fail(str(exc), code=2)
        except RevocationRefused as exc:
            fail(str(exc))
        publisher.reissue_after_revocation(
            issuers_touched(publisher.db, [outcome.certificate.serial_hex, *outcome.also_revoked])
        )
    if json_output:
        print_json(outcome.as_dict())
        return
    state = outcome.certificate
    if outcome.already_revoked:
        console.print(
            f"{state.serial_hex} was already revoked ({state.reason.name}, "
            f"{state.revoked_at.isoformat()}); the first reason stands"
        )
    else:
        console.print(f"revoked {state.serial_hex}: {state.reason.name}")
    if outcome.key_blocked:
        console.print("its public key is blocked for every future request")
    for other in outcome.also_revoked:
        console.print(f"also revoked {other}: same compromised key")
    console.print(f"tracking code {outcome.tracking_code}")


def crl_command(
    ca: str = typer.Option(
        ..., "--ca", help="CA name (its active key generation) or publication name (persons-g2)"
    ),
    delta: bool = typer.Option(False, "--delta", help="a delta CRL on the latest full CRL"),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="write the DER here (partitions get -p<n> before the suffix)"),
    ] = None,
    json_output: bool = JsonOption,
) -> None:
    """Sign and publish a new CRL now (every partition of the CA)."""
    with _publisher() as publisher:
        try:
            address = publisher.resolve(ca)
            issuing_ca = publisher.hierarchy.issuing_ca(address.ca_name, key_id=address.key_id)
        except UnknownCRL:
            try:
                issuing_ca = publisher.hierarchy.issuing_ca(ca)
            except HierarchyError:
                fail(f"no CA {ca!r}: see 'hoviyat ca list'")
        records = publisher.publish_all(issuing_ca, delta=delta, actor=_operator("ca crl"))
    written = []
    for record in records:
        if out is not None:
            path = out
            if len(records) > 1:
                path = out.with_name(f"{out.stem}-p{record.partition}{out.suffix}")
            path.write_bytes(record.der)
            written.append(str(path))
    summary = [
        {
            "issuer_ca": record.issuer_ca,
            "partition": record.partition,
            "crl_number": record.crl_number,
            "delta": record.is_delta,
            "base_crl_number": record.base_crl_number,
            "entries": record.entries,
            "this_update": record.this_update.isoformat(),
            "next_update": record.next_update.isoformat(),
        }
        for record in records
    ]
    if json_output:
        print_json({"crls": summary, "written": written})
        return
    for item in summary:
        kind = "delta CRL" if item["delta"] else "CRL"
        console.print(
            f"{item['issuer_ca']} {kind} #{item['crl_number']} partition {item['partition']}: "
            f"{item['entries']} entries, next update {item['next_update']}"
        )
    for written_path in written:
        console.print(f"written {written_path}")


def _crl_summary(record: CRLRecord) -> dict[str, object]:
    return {
        "issuer_ca": record.issuer_ca,
        "crl_number": record.crl_number,
        "entries": record.entries,
        "this_update": record.this_update.isoformat(),
        "next_update": record.next_update.isoformat(),
    }


def root_crl_command(
    out: Annotated[Path, typer.Option("--out", help="write the root's CRL (DER) here")],
    comment: str | None = typer.Option(None, "--comment", help="why; kept in the audit log"),
    json_output: bool = JsonOption,
) -> None:
    """On the root's machine: sign the root CA's CRL, to carry to 'ca import-crl'."""
    with _publisher() as publisher:
        try:
            address = publisher.resolve(names.ROOT)
        except UnknownCRL:
            fail("no root CA here: run 'hoviyat ca init --root-only' on the root's machine")
        record = publisher.publish(address, actor=_operator(comment or "ca root-crl"))
    try:
        out.write_bytes(record.der)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    if json_output:
        print_json({"crl": _crl_summary(record), "written": str(out)})
        return
    console.print(
        f"root CRL #{record.crl_number}: {record.entries} entries, next update "
        f"{record.next_update.isoformat()}; written {out}: publish it with "
        "'hoviyat ca import-crl' on the online machine before then"
    )


def import_crl_command(
    crl: Annotated[Path, typer.Option("--crl", help="a CRL from 'ca root-crl' (DER or PEM)")],
    comment: str | None = typer.Option(None, "--comment", help="why; kept in the audit log"),
    json_output: bool = JsonOption,
) -> None:
    """On the online machine: publish a CRL signed on the root's machine (/crl/root.crl)."""
    try:
        data = crl.read_bytes()
    except OSError as exc:
        fail(f"cannot read {crl}: {exc.strerror}")
    with _publisher() as publisher:
        try:
            record = publisher.import_crl(data, actor=_operator(comment or "ca import-crl"))
        except CRLImportRefused as exc:
            fail(f"refused: {exc}")
        url = publisher.url(publisher.resolve(record.issuer_ca))
    if json_output:
        print_json({"crl": _crl_summary(record), "url": url})
        return
    console.print(
        f"{record.issuer_ca} CRL #{record.crl_number} published at {url} "
        f"({record.entries} entries, next update {record.next_update.isoformat()})"
    )


def ocsp_responder_command(
    issuing: str = typer.Option(..., "--issuing", help="persons | organisations | infrastructure"),
    json_output: bool = JsonOption,
) -> None:
    """Issue the OCSP responder certificate of a CA's active generation, unless one is current.

    A CA-power certificate (profile ocsp-responder): issued only here or by the
    responder itself, never through the operator API; audited as a ceremony.
    """
    from idp.pki.ocsp_responder import OCSPService

    with _publisher() as publisher:
        ca = publisher.hierarchy.issuing_ca(issuing)
        loaded = OCSPService(publisher.db, publisher.hierarchy).ensure_responder(
            ca, requested_by=operator_name()
        )
    certificate = loaded.responder.certificate
    summary = {
        "issuer_ca": ca.publication_name,
        "serial": serial_hex(certificate.serial_number),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "certificate_pem": certificate.public_bytes(Encoding.PEM).decode(),
    }
    if json_output:
        print_json(summary)
        return
    console.print(
        f"{ca.publication_name} OCSP responder {summary['serial']}, "
        f"valid until {summary['not_after']}"
    )


def register(ca_app: typer.Typer) -> None:
    """Add the revocation, CRL and OCSP responder commands to ``hoviyat ca``."""
    ca_app.command("revoke")(revoke_command)
    ca_app.command("crl")(crl_command)
    ca_app.command("root-crl")(root_crl_command)
    ca_app.command("import-crl")(import_crl_command)
    ca_app.command("ocsp-responder")(ocsp_responder_command)
