"""Console roles, held in storage and keyed by the person's subject hash.

The key is :func:`idp.audit.log.subject_hash` of the national code: the roles
table never holds a code in clear, and an auditor's search by national code
finds the same person in the audit log.
"""

from __future__ import annotations

from enum import StrEnum

from sqlmodel import Session

from idp.storage import console as store


class Role(StrEnum):
    ADMIN = "admin"
    CA_OPERATOR = "ca_operator"
    AUDITOR = "auditor"
    COUNTER_CLERK = "counter_clerk"
    COUNTER_SUPERVISOR = "counter_supervisor"


_KNOWN = frozenset(role.value for role in Role)


def roles_of(session: Session, person_key: str) -> frozenset[Role]:
    """The roles ``person_key`` holds now (a value no longer known is ignored)."""
    return frozenset(Role(role) for role in store.roles_of(session, person_key) if role in _KNOWN)
