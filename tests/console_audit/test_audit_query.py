"""The console's search: parsing the form, sealing it into the URL, keyset pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col

from idp.audit.log import AuditEvent, append, subject_hash
from idp.audit.search import newest_page
from idp.console.audit_query import (
    BadSearch,
    BadToken,
    Search,
    decode_position,
    encode_position,
    parse_form,
    seal,
    unseal,
)
from idp.storage.audit_entries import EntryFilter, Position
from idp.storage.engine import Database
from idp.storage.models import AuditEntry

PEPPER = b"p" * 32
KEY = b"k" * 32
CODE = "0499370899"


def test_a_national_code_in_persian_digits_becomes_its_hash_and_nothing_else() -> None:
    search, hashes = parse_form(
        {"national_code": "۰۴۹۹۳۷۰۸۹۹", "since": "۲۰۲۶-۰۱-۰۱", "client": " bank "}, PEPPER
    )
    assert hashes == [subject_hash(PEPPER, CODE)] and search.subject_hashes == tuple(hashes)
    assert search.since == "2026-01-01" and search.client == "bank"
    sealed = seal(search, KEY)
    assert CODE not in sealed and hashes[0] not in sealed
    assert unseal(sealed, KEY) == search
    assert "national_code" not in search.form_values()


def test_every_bad_field_is_named() -> None:
    with pytest.raises(BadSearch) as raised:
        parse_form(
            {
                "national_code": "0499370898",
                "since": "2026-02-30",
                "client": "x" * 201,
                "outcome": "a\nb",
            },
            PEPPER,
        )
    assert raised.value.errors == {
        "national_code": "console.audit.err.national_code",
        "since": "console.audit.err.date",
        "client": "console.audit.err.text",
        "outcome": "console.audit.err.text",
    }
    with pytest.raises(BadSearch) as backwards:
        parse_form({"since": "2026-02-02", "until": "2026-02-01"}, PEPPER)
    assert backwards.value.errors == {"until": "console.audit.err.range"}


def test_the_last_day_is_included_in_the_time_range() -> None:
    where = Search(since="2026-01-01", until="2026-01-01").entry_filter()
    assert where.since == datetime(2026, 1, 1, tzinfo=UTC)
    assert where.until == datetime(2026, 1, 2, tzinfo=UTC)


def test_attack_a_search_link_altered_or_sealed_by_another_server_is_refused() -> None:
    sealed = seal(Search(client="bank"), KEY)
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    for forged in (flipped, seal(Search(client="bank"), b"o" * 32), "", "!!!", sealed[:10]):
        with pytest.raises(BadToken):
            unseal(forged, KEY)


def test_a_cursor_survives_its_round_trip_and_nonsense_is_refused() -> None:
    position = Position(datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC), 42)
    assert decode_position(encode_position(position)) == position
    for bad in ("", "1", "1.", ".1", "1.x", "-1.2", "1.-2", "9" * 19 + ".1", "١.٢"):
        with pytest.raises(BadToken):
            decode_position(bad)


def _append(db: Database, count: int, client: str) -> None:
    with db.session() as session:
        for n in range(count):
            append(
                session,
                AuditEvent(
                    tracking_code=f"T{client}{n:04d}", event_type="verification",
                    actor_type="client", actor_id=client, outcome="match",
                ),
            )  # fmt: skip


def test_keyset_pages_cover_every_match_once_even_when_entries_share_an_instant(
    db: Database,
) -> None:
    _append(db, 23, "bank")
    _append(db, 5, "telecom")
    same = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as session:  # ties on created_at: only the id orders them
        session.execute(
            update(AuditEntry).where(col(AuditEntry.id) % 2 == 0).values(created_at=same)
        )
    where = EntryFilter(actor_id="bank")
    seen: list[str] = []
    before = None
    for _ in range(10):
        with db.session() as session:
            page = newest_page(session, where, 5, before)
        seen += [e.tracking_code for e in page.entries]
        before = page.next
        if before is None:
            break
    assert sorted(seen) == [f"Tbank{n:04d}" for n in range(23)] and len(seen) == 23
    with db.session() as session:
        first = newest_page(session, where, 50)
    assert [e.tracking_code for e in first.entries] == seen and first.next is None
    times = [(e.created_at, e.id) for e in first.entries]
    assert times == sorted(times, reverse=True)


def test_a_time_range_bounds_the_pages(db: Database) -> None:
    _append(db, 4, "bank")
    old = datetime.now(UTC) - timedelta(days=40)
    with db.session() as session:
        session.execute(
            update(AuditEntry)
            .where(col(AuditEntry.tracking_code) == "Tbank0000")
            .values(created_at=old)
        )
    recent = Search(since=(datetime.now(UTC) - timedelta(days=1)).date().isoformat())
    with db.session() as session:
        found = newest_page(session, recent.entry_filter(), 10).entries
    assert [e.tracking_code for e in found] == ["Tbank0003", "Tbank0002", "Tbank0001"]
