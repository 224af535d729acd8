"""The CA's records in the database: its hierarchy, certificate intents and results.

Implements the protocols ``ca/`` signs against (:mod:`ca.ports`), with their
audit entries in the same transaction, and the typed reads the registration
side needs. Issuance runs on Core statements built once (not ORM sessions):
on the one-certificate path the unit of work would cost as much as the signature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import CompoundSelect, Connection, bindparam, insert, literal, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ca.hierarchy import EVENT_LIFECYCLE
from ca.ports import (
    AlreadyRecorded,
    Authority,
    CertificateEntry,
    Intent,
    KeyRefused,
    SerialTaken,
)
from idp.audit.log import AuditEvent, append, append_many, insert_events
from idp.storage.certificates import BlockedKey, CertificateAuthority, CertificateRecord
from idp.storage.engine import Database
from idp.storage.group_commit import GroupCommitter
from idp.tracking import new_tracking_code

T = TypeVar("T")
Write = Callable[[Connection], T]
# Runs a write in a transaction and returns once it is committed.
Committer = Callable[[Write[Any]], Any]

_TABLE = CertificateRecord.__table__  # type: ignore[attr-defined]


# --- the hierarchy ------------------------------------------------------------


def _authority(row: CertificateAuthority) -> Authority:
    return Authority(
        key_id=row.key_id,
        name=row.name,
        key_ref=row.key_ref,
        generation=row.generation,
        parent_key_id=row.parent_key_id,
        certificate=row.certificate,
        active=row.active,
        crl_partitions=row.crl_partitions,
    )


def authority_rows(db: Database) -> list[CertificateAuthority]:
    """Every CA generation's row, by name then generation."""
    with db.session() as session:
        return list(
            session.exec(
                select(CertificateAuthority).order_by(
                    col(CertificateAuthority.name), col(CertificateAuthority.generation)
                )
            )
        )


def active_authority_rows(db: Database, name: str | None = None) -> list[CertificateAuthority]:
    """The active generation rows (of CA ``name``, or of every CA) that have a certificate."""
    with db.session() as session:
        query = select(CertificateAuthority).where(
            col(CertificateAuthority.active).is_(True),
            col(CertificateAuthority.certificate).is_not(None),
        )
        if name is not None:
            query = query.where(CertificateAuthority.name == name)
        return list(session.exec(query))


def authority_row(db: Database, key_id: str) -> CertificateAuthority | None:
    with db.session() as session:
        return session.get(CertificateAuthority, key_id)


class _AuthorityChanges:
    """:class:`ca.ports.AuthorityChanges` on one session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def retire_active(self, name: str) -> list[str]:
        retired = []
        for old in self.session.exec(
            select(CertificateAuthority).where(
                CertificateAuthority.name == name,
                col(CertificateAuthority.active).is_(True),
            )
        ):
            old.active = False
            self.session.add(old)
            retired.append(old.key_id)
        return retired

    def add_authority(self, authority: Authority) -> None:
        self.session.add(
            CertificateAuthority(
                key_id=authority.key_id,
                name=authority.name,
                generation=authority.generation,
                parent_key_id=authority.parent_key_id,
                certificate=authority.certificate,
                key_ref=authority.key_ref,
                active=authority.active,
                crl_partitions=authority.crl_partitions,
            )
        )

    def install(self, key_id: str, certificate: bytes, parent_key_id: str) -> None:
        row = self.session.get(CertificateAuthority, key_id)
        assert row is not None
        row.certificate = certificate
        row.parent_key_id = parent_key_id
        row.active = True
        self.session.add(row)

    def add_certificate(self, entry: CertificateEntry, der: bytes, issued_at: datetime) -> None:
        self.session.add(
            CertificateRecord(
                serial_hex=entry.serial_hex,
                issuer_ca=entry.issuer_ca,
                issuer_key_id=entry.issuer_key_id,
                profile=entry.profile,
                status="issued",
                subject=entry.subject,
                subject_hash=entry.subject_hash,
                spki_sha256=entry.spki_sha256,
                not_before=entry.not_before,
                not_after=entry.not_after,
                der=der,
                requested_by=entry.requested_by,
                request_reason=entry.request_reason,
                tracking_code=entry.tracking_code or new_tracking_code(),
                issued_at=issued_at,
            )
        )

    def audit(self, actor: str, operation: str, outcome: str, detail: dict[str, object]) -> None:
        append(
            self.session,
            AuditEvent(
                tracking_code=new_tracking_code(),
                event_type=EVENT_LIFECYCLE,
                actor_type="operator",
                actor_id=actor,
                operation=operation,
                outcome=outcome,
                detail=detail,
            ),
        )


class AuthorityRecords:
    """:class:`ca.ports.AuthorityStore` over the database and the audit log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def authorities(self) -> list[Authority]:
        return [_authority(row) for row in authority_rows(self.db)]

    def authority(self, name: str, key_id: str | None = None) -> Authority | None:
        with self.db.session() as session:
            query = select(CertificateAuthority).where(CertificateAuthority.name == name)
            if key_id is not None:
                query = query.where(CertificateAuthority.key_id == key_id.lower())
            else:
                query = query.where(col(CertificateAuthority.active).is_(True))
            row = session.exec(query.order_by(col(CertificateAuthority.generation).desc())).first()
        return None if row is None else _authority(row)

    def authority_by_key_id(self, key_id: str) -> Authority | None:
        row = authority_row(self.db, key_id)
        return None if row is None else _authority(row)

    def pending_authority(self, name: str) -> Authority | None:
        with self.db.session() as session:
            row = session.exec(
                select(CertificateAuthority).where(
                    CertificateAuthority.name == name,
                    col(CertificateAuthority.certificate).is_(None),
                )
            ).first()
        return None if row is None else _authority(row)

    def last_generation(self, name: str) -> int:
        with self.db.session() as session:
            rows = session.exec(
                select(CertificateAuthority.generation).where(CertificateAuthority.name == name)
            ).all()
        return max(rows, default=0)

    @contextmanager
    def change(self) -> Iterator[_AuthorityChanges]:
        try:
            with self.db.session() as session:
                yield _AuthorityChanges(session)
        except IntegrityError as exc:
            raise AlreadyRecorded(str(exc.orig)) from exc


# --- issuance: intents and results ----------------------------------------------------


@cache
def _key_check(digests: int, key_ids: int) -> CompoundSelect:
    """One round trip for both key refusals; built once per batch shape, since
    constructing a select (or expanding an IN list) costs more than running it."""
    blocked = select(literal("blocked")).where(
        col(BlockedKey.spki_sha256).in_([bindparam(f"d{i}") for i in range(digests)])
    )
    ca_key = select(literal("ca-key")).where(
        col(CertificateAuthority.key_id).in_([bindparam(f"k{i}") for i in range(key_ids)])
    )
    return union_all(blocked, ca_key).limit(1)


_INTENT = insert(_TABLE)
_COMPLETE = (
    update(_TABLE)
    .where(_TABLE.c.serial_hex == bindparam("b_serial"), _TABLE.c.status == "pending")
    .values(status="issued", der=bindparam("b_der"), issued_at=bindparam("b_issued_at"))
)


def refuse_unusable_keys(connection: Connection, intents: Sequence[Intent]) -> None:
    """Raise :class:`KeyRefused` if any intent's key is blocked or belongs to a CA."""
    digests = sorted({intent.spki_sha256 for intent in intents})
    key_ids = sorted({intent.key_identifier for intent in intents})
    found = connection.execute(
        _key_check(len(digests), len(key_ids)),
        {
            **{f"d{i}": digest for i, digest in enumerate(digests)},
            **{f"k{i}": key_id for i, key_id in enumerate(key_ids)},
        },
    ).first()
    if found is None:
        return
    if found[0] == "blocked":
        raise KeyRefused(
            "blocked",
            "this public key was revoked for key compromise and may never be certified "
            "again: generate a new key",
        )
    raise KeyRefused("ca-key", "this public key belongs to a CA")


def _intent_row(intent: Intent, now: datetime) -> dict[str, object]:
    return {
        "serial_hex": intent.serial_hex,
        "issuer_ca": intent.issuer_ca,
        "issuer_key_id": intent.issuer_key_id,
        "profile": intent.profile,
        "status": "pending",
        "subject": intent.subject,
        "subject_hash": intent.subject_hash,
        "spki_sha256": intent.spki_sha256,
        "not_before": intent.not_before,
        "not_after": intent.not_after,
        "requested_by": intent.requested_by,
        "request_reason": intent.request_reason,
        "tracking_code": intent.tracking_code,
        "created_at": now,
    }


def _record_intents(connection: Connection, intents: Sequence[Intent], now: datetime) -> None:
    # In the same transaction as the intent: a key blocked a moment ago
    # cannot slip between a check and the signature.
    refuse_unusable_keys(connection, intents)
    connection.execute(_INTENT, [_intent_row(intent, now) for intent in intents])


def _record_issued(
    connection: Connection, intents: Sequence[Intent], ders: Sequence[bytes], issued_at: datetime
) -> None:
    result = connection.execute(
        _COMPLETE,
        [
            {"b_serial": intent.serial_hex, "b_der": der, "b_issued_at": issued_at}
            for intent, der in zip(intents, ders, strict=True)
        ],
    )
    # Only a pending row may become issued: if another process changed one
    # (it cannot, short of an operator's hand), this transaction rolls back.
    if connection.dialect.supports_sane_multi_rowcount and result.rowcount != len(intents):
        raise RuntimeError("a certificate left the pending state while being signed")
    insert_events(
        connection,
        (
            AuditEvent(
                tracking_code=intent.tracking_code or new_tracking_code(),
                event_type="certificate_issued",
                actor_type=intent.actor_type,
                actor_id=intent.requested_by,
                legal_basis=intent.request_reason,
                operation=intent.profile,
                subject_hash=intent.subject_hash,
                outcome="issued",
                detail={
                    "serial": intent.serial_hex,
                    "issuer_ca": intent.issuer_ca,
                    "issuer_key_id": intent.issuer_key_id,
                    "profile": intent.profile,
                    **intent.audit_detail,
                },
            )
            for intent in intents
        ),
    )


def committing(db: Database) -> Committer:
    """A transaction of its own per write, on a Core connection.

    Not an ORM session: nothing here needs the unit of work, and on the
    one-certificate path its bookkeeping costs as much as the signature. The
    engine's begin/commit hooks (SQLite's write lock) fire all the same.
    """

    def run(write: Write[Any]) -> Any:
        with db.engine.begin() as connection:
            return write(connection)

    return run


def through_group_commit(committer: GroupCommitter) -> Committer:
    """Each write under its own savepoint in the committer's shared transaction.

    The answer (or the write's own error: a refused key, a serial collision)
    comes back only after that transaction committed, so an intent is durable
    before the signature it announces.
    """

    def run(write: Write[Any]) -> Any:
        return committer.call(lambda session: write(session.connection()))

    return run


class IntentRecords:
    """:class:`ca.ports.IntentStore` over the database: each write through ``commit``
    (default: a transaction of its own; a group committer shares commits with
    concurrent requests)."""

    def __init__(self, db: Database, commit: Committer | None = None) -> None:
        self.db = db
        self._commit = commit or committing(db)

    def record_intents(self, intents: Sequence[Intent], now: datetime) -> None:
        try:
            self._commit(lambda connection: _record_intents(connection, intents, now))
        except IntegrityError as exc:
            raise SerialTaken(str(exc.orig)) from exc

    def record_issued(
        self, intents: Sequence[Intent], ders: Sequence[bytes], issued_at: datetime
    ) -> None:
        self._commit(lambda connection: _record_issued(connection, intents, ders, issued_at))


def fail_stale_intents(db: Database, older_than: timedelta, actor: str) -> list[str]:
    """Mark ``pending`` rows older than ``older_than`` as ``failed``; their serials.

    A pending row outlives its issuance only when the issuing process died between
    the intent and the completion: the certificate, if it was signed at all, was
    never handed out. The serial stays recorded (never reused) and the change is
    audited. A conditional UPDATE ... RETURNING makes each row fail exactly once,
    whichever process runs this.
    """
    cutoff = datetime.now(UTC) - older_than
    with db.session() as session:
        rows = (
            session.connection()
            .execute(
                update(_TABLE)
                .where(_TABLE.c.status == "pending", _TABLE.c.created_at < cutoff)
                .values(status="failed")
                .returning(
                    _TABLE.c.serial_hex,
                    _TABLE.c.tracking_code,
                    _TABLE.c.subject_hash,
                    _TABLE.c.profile,
                    _TABLE.c.issuer_ca,
                )
            )
            .all()
        )
        append_many(
            session,
            (
                AuditEvent(
                    tracking_code=row.tracking_code,
                    event_type="certificate_failed",
                    actor_type="operator",
                    actor_id=actor,
                    operation=row.profile,
                    subject_hash=row.subject_hash,
                    outcome="failed",
                    detail={
                        "serial": row.serial_hex,
                        "issuer_ca": row.issuer_ca,
                        "reason": "issuance intent never completed",
                    },
                )
                for row in rows
            ),
        )
    return sorted(row.serial_hex for row in rows)


# --- reading certificates ---------------------------------------------------------------


def certificate_record(db: Database, serial_hex: str) -> CertificateRecord | None:
    with db.session() as session:
        return session.get(CertificateRecord, serial_hex)


def certificate_records(
    db: Database, limit: int = 100, profile: str | None = None, status: str | None = None
) -> list[CertificateRecord]:
    """The latest certificates first, optionally of one profile or status."""
    with db.session() as session:
        query = select(CertificateRecord)
        if profile:
            query = query.where(CertificateRecord.profile == profile)
        if status:
            query = query.where(CertificateRecord.status == status)
        query = query.order_by(col(CertificateRecord.created_at).desc()).limit(limit)
        return list(session.exec(query))


def record_audit_event(db: Database, event: AuditEvent) -> None:
    """One audit entry in a transaction of its own: a refusal, which changes nothing else."""
    with db.session() as session:
        append(session, event)
