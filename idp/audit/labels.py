"""Persian and English names of audit event types and outcomes, for people reading them.

This is the registry of every value the code appends: tests/audit/test_audit_labels.py
enumerates them from the source and fails on one missing here. Values no
longer appended stay, for the entries that carry them. An unknown value (an
entry older or newer than this table) is still shown as stored, never hidden.
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
    "attestation.verified": ("بررسی گواهی‌نامه", "Attestation checked"),
    "authorization_code_issued": ("صدور کد ورود برای سامانه", "Sign-in code issued to an app"),
    "certificate_refused": ("رد درخواست گواهی", "Certificate request refused"),
    "certificate_failed": ("خطا در صدور گواهی", "Certificate issuance failed"),
    "ca_lifecycle": ("عملیات مرکز صدور گواهی", "Certificate authority operation"),
    "reconciliation": ("تطبیق دسته‌ای سوابق", "Batch reconciliation of records"),
    "client_changed": ("تغییر کارخواه", "Client changed"),
    "policy_changed": ("تغییر سیاست خدمت", "Service policy changed"),
    "key_rotated": ("چرخش کلید", "Key rotated"),
    "audit_exported": ("برون‌بری گزارش ممیزی", "Audit log exported"),
    "audit_searched": ("جست‌وجو در گزارش ممیزی", "Audit log searched"),
    "acme_account": ("حساب ACME", "ACME account"),
    "acme_eab_key": ("کلید پیوند حساب ACME", "ACME account binding key"),
    "acme_order_created": ("ثبت سفارش گواهی ACME", "ACME certificate order placed"),
    "acme_order_refused": ("رد سفارش گواهی ACME", "ACME certificate order refused"),
    "acme_order_finalized": ("نهایی‌سازی سفارش گواهی ACME", "ACME certificate order finalized"),
    "client_registration": ("ثبت پویای کارخواه", "Dynamic client registration"),
    "dcr_initial_token": ("توکن اولیهٔ ثبت کارخواه", "Client registration initial token"),
    "passkey": ("گذرکلید (کلید امنیتی)", "Passkey (security key)"),
    "counter_office": ("دفتر پیشخوان خدمت", "Service counter office"),
    "counter_session": ("خدمت حضوری در پیشخوان", "Assisted session at a service counter"),
    "counter_service": ("خدمت انجام‌شده در پیشخوان", "Service run at a service counter"),
    "counter_refused": ("درخواست ردشده در پیشخوان", "Refused at a service counter"),
    "counter_flagged": ("علامت‌گذاری خدمت پیشخوان برای بررسی", "Counter session flagged for review"),
    "console_refusal": ("رد درخواست در کنسول", "Console request refused"),
    "console_sign_in": ("ورود به کنسول", "Console sign-in"),
    "console_sign_out": ("خروج از کنسول", "Console sign-out"),
    "console_role": ("نقش کنسول", "Console role"),
    "console_approval": ("تأیید دونفره در کنسول", "Two-person approval in the console"),
    "client_authentication": ("احراز هویت کارخواه", "Client authentication"),
    "dcr_statement_issuer": (
        "صادرکنندهٔ مورد اعتماد بیانیهٔ نرم‌افزار",
        "Trusted software statement issuer",
    ),
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
    "valid": ("معتبر", "Valid"),
    "invalid": ("نامعتبر", "Invalid"),
    "granted": ("اجازه داده شد", "Permission granted"),
    "denied": ("اجازه داده نشد", "Permission denied"),
    "cancelled": ("لغو شد", "Cancelled"),
    "not_owner": ("شماره همراه به نام شما نیست", "Mobile number is not yours"),
    "refused_deceased": ("رد شد: فوت ثبت شده است", "Refused: recorded as deceased"),
    "otp_accepted": ("رمز یک‌بارمصرف پذیرفته شد", "One-time code accepted"),
    "otp_wrong": ("رمز یک‌بارمصرف نادرست بود", "Wrong one-time code"),
    "otp_expired": ("رمز یک‌بارمصرف منقضی شده بود", "One-time code expired"),
    "otp_exhausted": ("تلاش‌های مجاز رمز یک‌بارمصرف تمام شد", "One-time code attempts used up"),
    "otp_used": ("رمز یک‌بارمصرف پیش‌تر به کار رفته بود", "One-time code already used"),
    "passkey_accepted": ("حضور با گذرکلید تأیید شد", "Presence confirmed with a passkey"),
    "passkey_refused": ("گذرکلید برای تأیید حضور پذیرفته نشد", "Passkey refused for presence"),
    "link_issued": (
        "پیوند تأیید حضور برای گوشی شهروند صادر شد",
        "Presence confirmation link issued for the citizen's phone",
    ),
    "refused_by_citizen": (
        "شهروند رد کرد: «این من نیستم / در پیشخوان نیستم»",
        "Refused by the citizen: “not me / not at a counter”",
    ),
    "not_awaiting": ("خدمت دیگر در انتظار تأیید حضور نبود", "Session no longer awaited presence"),
    "already_revoked": ("پیش‌تر ابطال شده بود", "Already revoked"),
    "published": ("منتشر شد", "Published"),
    "accepted": ("پذیرفته شد", "Accepted"),
    "started": ("آغاز شد", "Started"),
    "resumed": ("از سر گرفته شد", "Resumed"),
    "completed": ("انجام شد", "Completed"),
    "result_retrieved": ("نتیجه دریافت شد", "Result retrieved"),
    "requested": ("درخواست شد", "Requested"),
    "created": ("ایجاد شد", "Created"),
    "installed": ("نصب شد", "Installed"),
    "root_installed": ("گواهی ریشه نصب شد", "Root certificate installed"),
    "registered": ("ثبت شد", "Registered"),
    "already_registered": ("پیش‌تر ثبت شده بود", "Already registered"),
    "malformed": ("پاسخ نامفهوم بود", "Malformed answer"),
    "challenge_unknown": (
        "چالش ناشناخته، مصرف‌شده یا منقضی بود",
        "Challenge unknown, already used or expired",
    ),
    "not_yours": ("گذرکلید از آنِ این شخص نبود", "Passkey of someone else"),
    "sign_count_regressed": (
        "شمارندهٔ امضا عقب رفت (احتمال کلید کپی‌شده)",
        "Signature counter went back (possibly a cloned key)",
    ),
    "attestation_missing": ("مدل کلید گواهی نشده بود", "Key model not attested"),
    "approved": ("تأیید شد", "Approved"),
    "applied": ("انجام شد (پس از تأیید)", "Carried out (after approval)"),
    "rejected": ("رد شد", "Rejected"),
    "aaguid_not_allowed": ("مدل کلید مجاز نبود", "Key model not allowed"),
    "ended": ("پایان یافت", "Ended"),
    "flagged": ("برای بررسی علامت خورد", "Flagged for review"),
}


def label(table: dict[str, tuple[str, str]], value: str) -> dict[str, str]:
    fa, en = table.get(value, (value, value))
    return {"fa": fa, "en": en}
