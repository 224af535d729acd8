"""Persian and English names of audit event types and outcomes, for people reading them.

Unknown values are shown as they are stored: a new event type appears in a
citizen's history before anyone has translated it, never disappears from it.
"""

from __future__ import annotations

EVENT_LABELS: dict[str, tuple[str, str]] = {
    "verification": ("استعلام هویت", "Identity verification"),
    "login": ("ورود", "Login"),
    "logout": ("خروج", "Logout"),
    "consent": ("رضایت", "Consent"),
    "token_issued": ("صدور توکن", "Token issued"),
    "token_refreshed": ("تمدید توکن", "Token refreshed"),
    "token_revoked": ("ابطال توکن", "Token revoked"),
    "grant_revoked": ("ابطال مجوز دسترسی", "Access grant revoked"),
    "certificate_issued": ("صدور گواهی", "Certificate issued"),
    "certificate_revoked": ("ابطال گواهی", "Certificate revoked"),
    "crl_published": ("انتشار فهرست ابطال", "Revocation list published"),
    "attestation.issued": ("صدور گواهی‌نامه", "Attestation issued"),
    "attestation.revoked": ("ابطال گواهی‌نامه", "Attestation revoked"),
    "client_changed": ("تغییر کارخواه", "Client changed"),
    "policy_changed": ("تغییر سیاست خدمت", "Service policy changed"),
    "key_rotated": ("چرخش کلید", "Key rotated"),
    "audit_exported": ("برون‌بری گزارش ممیزی", "Audit log exported"),
    "audit_searched": ("جست‌وجو در گزارش ممیزی", "Audit log searched"),
}

OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "match": ("تطابق", "Match"),
    "no_match": ("عدم تطابق", "No match"),
    "refused": ("رد شد", "Refused"),
    "success": ("موفق", "Succeeded"),
    "ok": ("موفق", "Succeeded"),
    "issued": ("صادر شد", "Issued"),
    "revoked": ("ابطال شد", "Revoked"),
    "failed": ("ناموفق", "Failed"),
}


def label(table: dict[str, tuple[str, str]], value: str) -> dict[str, str]:
    fa, en = table.get(value, (value, value))
    return {"fa": fa, "en": en}
