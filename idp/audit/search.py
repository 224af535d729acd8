"""Finding audit entries by the auditor's filters.

National codes and national identifiers are never stored; they are turned into
subject hashes with the pepper at query time (:func:`idp.audit.log.subject_hash`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlmodel import Session

from idp.audit.log import AuditEvent, append_many, subject_hash
from idp.storage.audit_entries import EntryFilter, Position, find_entries, page_newest_first
from idp.storage.models import AuditEntry
from verifiers.identifiers import validate_national_code, validate_national_id

MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditQuery(EntryFilter):
    """The stored-entry filters, plus identifiers to hash and a page size."""

    national_code: str | None = None
    national_id: str | None = None
    limit: int = 100


def subject_hashes(pepper: bytes, query: AuditQuery) -> list[str]:
    """The subject hashes a query asks for; raises ValueError naming a bad identifier."""
    hashes = []
    if query.national_code:
        hashes.append(subject_hash(pepper, validate_national_code(query.national_code)))
    if query.national_id:
        hashes.append(subject_hash(pepper, validate_national_id(query.national_id)))
    return hashes


def entry_filter(pepper: bytes, query: AuditQuery) -> EntryFilter:
    """The stored-entry filter of a query; raises ValueError naming a bad identifier.

    Hashes already in the query (the console's, made when the form was posted)
    are kept beside those of its identifiers.
    """
    hashes = (*query.subject_hashes, *subject_hashes(pepper, query))
    return replace(query, subject_hashes=hashes)


def search(session: Session, pepper: bytes, query: AuditQuery) -> Sequence[AuditEntry]:
    """Entries matching every given filter, oldest first, at most ``query.limit``."""
    limit = max(1, min(query.limit, MAX_PAGE))
    return find_entries(session, entry_filter(pepper, query), limit)


@dataclass(frozen=True)
class Page:
    """One newest-first page and where the next one starts (None: this is the last)."""

    entries: list[AuditEntry]
    next: Position | None


def newest_page(
    session: Session, where: EntryFilter, limit: int, before: Position | None = None
) -> Page:
    """The console's search: newest first, keyset-paged by (created_at, id).

    ``where`` already carries subject hashes (:func:`entry_filter`), so a page
    of a national-code search needs neither the code nor the pepper again.
    """
    limit = max(1, min(limit, MAX_PAGE))
    rows = page_newest_first(session, where, limit + 1, before)
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    assert last.id is not None  # stored rows have ids
    return Page(rows[:limit], Position(last.created_at, last.id))


def record_subject_search(
    session: Session,
    hashes: list[str],
    *,
    tracking_code: str,
    actor_type: str,
    actor_id: str | None,
    service_code: str | None = None,
    legal_basis: str | None = None,
) -> None:
    """Log a search by person: it is itself an access to their data, shown in their history."""
    append_many(
        session,
        (
            AuditEvent(
                tracking_code=tracking_code,
                event_type="audit_searched",
                actor_type=actor_type,
                actor_id=actor_id,
                service_code=service_code,
                legal_basis=legal_basis,
                subject_hash=value,
                outcome="success",
            )
            for value in hashes
        ),
    )
