"""An audit entry as the CLI and the HTTP API show it: one JSON form for both.

This is the row as stored (with its database id, for paging), not the
canonical version 1 document a leaf hashes (:mod:`idp.audit.canonical`).
"""

from __future__ import annotations

from typing import Any

from idp.storage.models import AuditEntry


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "leaf_index": entry.leaf_index,
        "created_at": entry.created_at.isoformat(),
        "tracking_code": entry.tracking_code,
        "event_type": entry.event_type,
        "actor_type": entry.actor_type,
        "actor_id": entry.actor_id,
        "service_code": entry.service_code,
        "legal_basis": entry.legal_basis,
        "operation": entry.operation,
        "subject_hash": entry.subject_hash,
        "outcome": entry.outcome,
        "detail": entry.detail,
    }
