"""Imports every module that defines tables, so metadata and migrations see them all.

A feature that adds tables adds its module here (one line) and an Alembic
revision on its own branch (``down_revision = "0001"``, its own
``branch_labels``); ``hoviyat db upgrade`` applies all heads.
"""

from idp.storage import (
    acme_accounts,  # noqa: F401
    acme_eab,  # noqa: F401
    acme_nonces,  # noqa: F401
    acme_orders,  # noqa: F401
    attestations,  # noqa: F401
    audit_entries,  # noqa: F401  (the search indexes, SEARCH_INDEXES)
    audit_log,  # noqa: F401
    certificates,  # noqa: F401
    console,  # noqa: F401
    console_shown_once,  # noqa: F401
    counters,  # noqa: F401
    crls,  # noqa: F401
    dpop_proofs,  # noqa: F401
    login,  # noqa: F401
    logout_deliveries,  # noqa: F401
    models,  # noqa: F401
    oidc,  # noqa: F401
    passkeys,  # noqa: F401
    reconciliations,  # noqa: F401
    registrations,  # noqa: F401
    statement_issuers,  # noqa: F401
)
