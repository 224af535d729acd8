"""The CA's records in the database: its hierarchy, certificate intents and results.

Implements the protocols ``ca/`` signs against (:mod:`ca.ports`), with their
audit entries in the same transaction, and the typed reads the registration
side needs. Issuance runs on Core statements built once (not ORM sessions):
on the one-certificate path the unit of work would cost as much as the signature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import CompoundSelect, Connection, bindparam, insert, literal, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ca.hierarchy import EVENT_LIFECYCLE
from ca.names import ROOT
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


_AUTHORITY_FIELDS = tuple(field.name for field in fields(Authority))
_ENTRY_FIELDS = tuple(field.name for field in fields(CertificateEntry))


def _authority(row: CertificateAuthority) -> Authority:
    # Authority's fields are the row's columns, but for the row's created_at.
    return Authority(**{name: getattr(row, name) for name in _AUTHORITY_FIELDS})


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


def authority_named(db: Database, name: str, generation: int) -> CertificateAuthority | None:
    with db.session() as session:
        return session.exec(
            select(CertificateAuthority).where(
                CertificateAuthority.name == name,
                CertificateAuthority.generation == generation,
            )
        ).first()


def authorities_with_key_ids(db: Database, key_ids: set[str]) -> list[CertificateAuthority]:
    with db.session() as session:
        return list(
            session.exec(
                select(CertificateAuthority).where(
                    col(CertificateAuthority.key_id).in_(sorted(key_ids))
                )
            )
        )


def _certified_issuing() -> Any:
    return (
        CertificateAuthority.name != ROOT,
        col(CertificateAuthority.certificate).is_not(None),
    )


def certified_issuing_rows(db: Database) -> list[CertificateAuthority]:
    """Every issuing CA generation (not the root) that has its certificate."""
    with db.session() as session:
        return list(session.exec(select(CertificateAuthority).where(*_certified_issuing())))


def certified_issuing_key_ids(db: Database) -> frozenset[str]:
    """The key ids of :func:`certified_issuing_rows`, read alone (a cheap change check)."""
    with db.session() as session:
        return frozenset(
            session.exec(select(CertificateAuthority.key_id).where(*_certified_issuing())).all()
        )


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
        self.session.add(CertificateAuthority(**asdict(authority)))

    def install(self, key_id: str, certificate: bytes, parent_key_id: str) -> None:
        row = self.session.get(CertificateAuthority, key_id)
        assert row is not None
        row.certificate = certificate
        row.parent_key_id = parent_key_id
        row.active = True
        self.session.add(row)

    def add_certificate(self, entry: CertificateEntry, der: bytes, issued_at: datetime) -> None:
        # CertificateEntry's fields are columns of the row.
        columns = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
        columns["tracking_code"] = entry.tracking_code or new_tracking_code()
        self.session.add(
            CertificateRecord(**columns, status="issued", der=der, issued_at=issued_at)
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
def _key_check(digests: int, key_ids: int) -> CompoundSelect[Any]:
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


def certificate_with_tracking_code(db: Database, tracking_code: str) -> CertificateRecord | None:
    """The certificate (pending, issued or failed) filed under ``tracking_code``, if any:
    how a resumed ceremony issuance finds the one its first worker already signed."""
    with db.session() as session:
        query = select(CertificateRecord).where(CertificateRecord.tracking_code == tracking_code)
        return session.exec(query.limit(1)).first()


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


# --- certificate status, as OCSP reads it ------------------------------------------------

CertificateState = tuple[str, datetime | None, str | None]
"""status, revoked_at, revocation_reason"""

_STATUS_SQL = {  # by "the driver's placeholder is ?": sqlite3 yes, psycopg no
    True: "SELECT status, revoked_at, revocation_reason FROM certificates "
    "WHERE serial_hex = ? AND issuer_key_id = ?",
    False: "SELECT status, revoked_at, revocation_reason FROM certificates "
    "WHERE serial_hex = %s AND issuer_key_id = %s",
}


class StatusReader:
    """One certificate's status by serial and issuer: the OCSP responder's read, per request."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sql = _STATUS_SQL[db.engine.dialect.paramstyle == "qmark"]

    def state(self, serial_hex: str, issuer_key_id: str) -> CertificateState | None:
        """The row's state, read on the driver connection in autocommit.

        Not through a SQLAlchemy transaction: on SQLite that begins with BEGIN
        IMMEDIATE, which would make every OCSP read queue for the write lock.
        """
        connection = self.db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(self._sql, (serial_hex, issuer_key_id))
            row = cursor.fetchone()
            cursor.close()
        finally:
            connection.close()  # back to the pool, which rolls back what PostgreSQL began
        if row is None:
            return None
        revoked_at = row[1]
        if revoked_at is not None:
            if isinstance(revoked_at, str):  # SQLite hands back its text form, UTC
                revoked_at = datetime.fromisoformat(revoked_at)
            revoked_at = (
                revoked_at.replace(tzinfo=UTC)
                if revoked_at.tzinfo is None
                else revoked_at.astimezone(UTC)
            )
        return (row[0], revoked_at, row[2])
