"""Issuing an attestation at a counter: the citizen's chosen facts, signed, with a code
they hand to whoever needs them (instead of a photocopy of their card).

The act is admitted, counted and recorded (``requested``, naming clerk,
citizen and office) in one transaction; then the attestation is issued
through the attestation service, whose own transaction writes its row and
its ``attestation.issued`` entry; then ``issued`` is recorded with its
tracking code. The issuing is not done inside the first transaction because
the attestation service commits on its own connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from idp.context import Hoviyat
from idp.counters.assisted import (
    ActResult,
    BadInput,
    Clerk,
    Reason,
    acting,
    admit,
    national_code_of,
    now,
    record,
    refuse,
)
from idp.counters.services import CounterService
from idp.storage import counters

# (national code, purpose, facts) → the issuing answer: ``tracking_code``, ``id``,
# ``verification_code``. Raises BadInput for a request the service refuses.
Issue = Callable[[str, str, list[str]], dict[str, Any]]

SERVICE = CounterService.ATTESTATION_ISSUE.value
OPERATION = "counter.attestation_issue"


def issue_attestation(
    hoviyat: Hoviyat, clerk: Clerk, session_id: str, form: dict[str, str], issue: Issue
) -> ActResult:
    code = national_code_of(form.get("national_code", ""))
    purpose = " ".join(form.get("purpose", "").split())
    facts = [f for f in form.get("facts", "").split(",") if f]
    if not 3 <= len(purpose) <= 500:
        raise BadInput("purpose", "say what the attestation is for (3 to 500 characters)")
    if not facts:
        raise BadInput("facts", "choose at least one fact")
    with acting(hoviyat) as db:
        row, office = admit(hoviyat, db, clerk, session_id, SERVICE, code, OPERATION)
        if not counters.count_act(db, row.id, now()):
            raise refuse(
                hoviyat, clerk, Reason.EXPIRED, operation=OPERATION, subject=row.citizen_key
            )
        record(
            db,
            "counter_service",
            "requested",
            clerk,
            row,
            office,
            OPERATION,
            service=SERVICE,
            purpose=purpose,
            facts=facts,
        )
    answer = issue(code, purpose, facts)
    with hoviyat.db.session() as db:
        entry = record(
            db,
            "counter_service",
            "issued",
            clerk,
            row,
            office,
            OPERATION,
            service=SERVICE,
            attestation_id=answer["id"],
            attestation_tracking_code=answer["tracking_code"],
        )
    return ActResult(SERVICE, "issued", {}, entry, answer.get("verification_code"))
