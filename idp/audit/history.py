"""A citizen's own access history: who looked them up, when, why, and with what outcome.

Shared by the JSON API (``GET /v1/me/access-history``) and the citizen's page
(``GET /login/history``). Entries are those whose subject hash is the
person's; lookups a service policy defers (``history_delay_days``) stay hidden
until the delay has passed. Every event type and outcome carries its Persian
and English label (:mod:`idp.audit.labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jdatetime
from sqlalchemy import and_, or_, true
from sqlmodel import Session, col
from sqlmodel import select as sqlmodel_select

from idp.audit.labels import EVENT_LABELS, OUTCOME_LABELS, label
from idp.audit.log import subject_hash
from idp.storage.models import AuditEntry, Client
from policies.service_policy import ServicePolicy

TEHRAN = ZoneInfo("Asia/Tehran")  # citizens read times on Iran's clock


class BadCursor(ValueError):
    """``before`` is not an entry of this person's history."""


@dataclass(frozen=True)
class HistoryPage:
    items: list[dict[str, Any]]
    next_cursor: int | None


def _visible(policies: dict[str, ServicePolicy], now: datetime) -> Any:
    """Policy-deferred lookups stay hidden until ``history_delay_days`` have passed."""
    column = AuditEntry.__table__.c  # type: ignore[attr-defined]
    delayed = {code: p.history_delay_days for code, p in policies.items() if p.history_delay_days}
    if not delayed:
        return true()
    return or_(
        column.service_code.is_(None),
        column.service_code.not_in(list(delayed)),
        *[
            and_(column.service_code == code, column.created_at <= now - timedelta(days=days))
            for code, days in delayed.items()
        ],
    )


def citizen_history(
    session: Session,
    *,
    pepper: bytes,
    policies: dict[str, ServicePolicy],
    national_code: str,
    limit: int,
    before: int | None = None,
) -> HistoryPage:
    """The newest ``limit`` visible entries about the person, older than ``before``."""
    column = AuditEntry.__table__.c  # type: ignore[attr-defined]
    wanted = subject_hash(pepper, national_code)
    statement = sqlmodel_select(AuditEntry).where(
        column.subject_hash == wanted, _visible(policies, datetime.now(UTC))
    )
    if before is not None:
        # The cursor is the last entry shown; paging follows (time, id) order.
        last = session.get(AuditEntry, before)
        if last is None or last.subject_hash != wanted:
            raise BadCursor("'before' must be a next_cursor of this history")
        statement = statement.where(
            or_(
                column.created_at < last.created_at,
                and_(column.created_at == last.created_at, column.id < last.id),
            )
        )
    statement = statement.order_by(column.created_at.desc(), column.id.desc()).limit(limit)
    entries = list(session.exec(statement))
    actor_ids = {e.actor_id for e in entries if e.actor_type == "client" and e.actor_id}
    names = {
        c.client_id: c.name
        for c in session.exec(sqlmodel_select(Client).where(col(Client.client_id).in_(actor_ids)))
    }
    return HistoryPage(
        [history_item(e, policies, names) for e in entries],
        entries[-1].id if len(entries) == limit else None,
    )


def history_item(
    entry: AuditEntry, policies: dict[str, ServicePolicy], names: dict[str, str]
) -> dict[str, Any]:
    policy = policies.get(entry.service_code or "")
    moment = entry.created_at if entry.created_at.tzinfo else entry.created_at.replace(tzinfo=UTC)
    tehran = moment.astimezone(TEHRAN)
    return {
        "time": moment.isoformat(),
        "time_jalali": jdatetime.datetime.fromgregorian(datetime=tehran).strftime("%Y/%m/%d %H:%M"),
        "event": {"type": entry.event_type, **label(EVENT_LABELS, entry.event_type)},
        "service": {
            "code": entry.service_code,
            "fa": policy.title_fa if policy else entry.service_code,
            "en": policy.title_en if policy else entry.service_code,
        },
        "agency": names.get(entry.actor_id or "", entry.actor_id),
        "legal_basis": entry.legal_basis,
        "tracking_code": entry.tracking_code,
        "outcome": {"code": entry.outcome, **label(OUTCOME_LABELS, entry.outcome)},
    }
