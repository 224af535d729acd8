"""A citizen's own access history: who looked them up, when, why, and with what outcome.

Shared by the JSON API (``GET /v1/me/access-history``) and the citizen's page
(``GET /login/history``). Entries are those whose subject hash is the
person's; lookups a service policy defers (``history_delay_days``) stay hidden
until the delay has passed. Every event type and outcome carries its Persian
and English label (:mod:`idp.audit.labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import jdatetime
from sqlmodel import Session

from idp.audit.labels import EVENT_LABELS, OUTCOME_LABELS, label
from idp.audit.log import subject_hash
from idp.storage.audit_entries import BadCursor, client_names, subject_history
from idp.storage.models import AuditEntry
from policies.service_policy import ServicePolicy

TEHRAN = ZoneInfo("Asia/Tehran")  # citizens read times on Iran's clock

# Acts done for the citizen at a service counter (Article 14) name the office and
# the clerk, never the clerk's national code: their names travel in the entry.
COUNTER_ACTORS = frozenset({"counter_clerk", "counter_supervisor"})

__all__ = ["TEHRAN", "BadCursor", "HistoryPage", "citizen_history", "history_item"]


@dataclass(frozen=True)
class HistoryPage:
    items: list[dict[str, Any]]
    next_cursor: int | None


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
    # Policy-deferred lookups stay hidden until ``history_delay_days`` have passed.
    delayed = {code: p.history_delay_days for code, p in policies.items() if p.history_delay_days}
    entries = subject_history(
        session,
        subject_hash(pepper, national_code),
        delayed_services=delayed,
        now=datetime.now(UTC),
        limit=limit,
        before=before,
    )
    names = client_names(
        session, (e.actor_id for e in entries if e.actor_type == "client" and e.actor_id)
    )
    return HistoryPage(
        [history_item(e, policies, names) for e in entries],
        entries[-1].id if len(entries) == limit else None,
    )


def history_item(
    entry: AuditEntry, policies: dict[str, ServicePolicy], names: dict[str, str]
) -> dict[str, Any]:
    policy = policies.get(entry.service_code or "")
    moment = entry.created_at
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
        "agency": _counter_agency(entry) or names.get(entry.actor_id or "", entry.actor_id),
        "legal_basis": entry.legal_basis,
        "tracking_code": entry.tracking_code,
        "outcome": {"code": entry.outcome, **label(OUTCOME_LABELS, entry.outcome)},
    }


def _counter_agency(entry: AuditEntry) -> dict[str, str] | None:
    """The words "counter office X, clerk Y" in Persian and English, for an act at a counter."""
    if entry.actor_type not in COUNTER_ACTORS:
        return None
    detail = entry.detail or {}
    office = str(detail.get("office_name") or detail.get("office_id") or "")
    clerk = str(detail.get("clerk_name") or "")
    return {
        "fa": f"پیشخوان خدمت «{office}»، کارمند {clerk}",
        "en": f"Service counter “{office}”, clerk {clerk}",
        "office_id": str(detail.get("office_id") or ""),
        "office": office,
        "clerk": clerk,
    }
