"""The console's words, Persian first and English; the login pages' catalogue behind them.

Pages of other parts of the console add their own messages with
:func:`add_messages` at import (one dictionary per module), so a translator
finds each page's words beside its code.
"""

# ruff: noqa: E501  (sentences stay on one line so a translator reads each whole)

from __future__ import annotations

from idp.login.i18n import MESSAGES as LOGIN_MESSAGES
from idp.login.i18n import Language

# fmt: off
MESSAGES: dict[str, tuple[str, str]] = {
    "console.site": ("کنسول هویت", "Hoviyat console"),
    "console.switch": ("English", "فارسی"),
    "console.home": ("پیشخوان", "Home"),
    "console.home.welcome": ("{name}، خوش آمدید.", "Welcome, {name}."),
    "console.home.roles": ("نقش‌های شما", "Your roles"),
    "console.home.no_roles": ("هنوز نقشی به شما داده نشده است. از یک مدیر بخواهید.", "You hold no role yet. Ask an administrator."),
    "console.home.acr": ("سطح اطمینان ورود", "Sign-in assurance level"),
    "console.nav": ("بخش‌های کنسول", "Console sections"),
    "console.sign_out": ("خروج", "Sign out"),
    "console.signed_out": ("از کنسول خارج شدید.", "You have signed out of the console."),
    "console.sign_in_again": ("ورود دوباره", "Sign in again"),
    "console.refused.title": ("دسترسی ندارید", "Access refused"),
    "console.refused.role": ("این صفحه نقش «{roles}» می‌خواهد که شما ندارید. این درخواست ثبت شد.", "This page needs the role “{roles}”, which you do not hold. The attempt has been recorded."),
    "console.refused.csrf": ("فرم منقضی یا نامعتبر بود. صفحه را دوباره باز کنید و دوباره بفرستید. این درخواست ثبت شد.", "The form had expired or was not valid. Open the page again and resend it. The attempt has been recorded."),
    "console.tracking_code": ("کد رهگیری", "Tracking code"),
    "console.error.title": ("خطا", "Error"),
    "console.error.sign_in": ("ورود به کنسول کامل نشد: {reason}. دوباره وارد شوید.", "Signing in to the console did not complete: {reason}. Please sign in again."),
    "console.error.level": ("کنسول ورود با سطح اطمینان «قابل توجه» یا بالاتر را می‌خواهد.", "The console needs a sign-in at assurance level substantial or higher."),
    "console.role.admin": ("مدیر", "Administrator"),
    "console.role.ca_operator": ("گرداننده مرکز صدور گواهی", "CA operator"),
    "console.role.auditor": ("ممیز", "Auditor"),
    "console.role.counter_clerk": ("کارمند پیشخوان", "Counter clerk"),
    "console.role.counter_supervisor": ("سرپرست پیشخوان", "Counter supervisor"),
    "console.approvals": ("تأییدهای در انتظار", "Pending approvals"),
    "console.approvals.none": ("درخواستی در انتظار تأیید شما نیست.", "No request awaits your approval."),
    "console.approvals.kind": ("عملیات", "Operation"),
    "console.approvals.requested_by": ("درخواست‌کننده", "Requested by"),
    "console.approvals.when": ("زمان درخواست", "Requested at"),
    "console.approvals.approve": ("تأیید", "Approve"),
    "console.approvals.reject": ("رد", "Reject"),
    "console.approvals.yours": ("درخواست خود شما؛ مدیر دیگری باید تأیید کند", "Your own request; another person must approve it"),
    "console.approvals.approved": ("درخواست تأیید و انجام شد.", "The request was approved and carried out."),
    "console.approvals.rejected": ("درخواست رد شد.", "The request was rejected."),
    "console.approvals.one": ("درخواست تأیید دونفره", "Two-person request"),
    "console.approvals.state": ("وضعیت", "State"),
    "console.approvals.state.pending": ("در انتظار تأیید", "Awaiting approval"),
    "console.approvals.state.approved": ("تأیید شد", "Approved"),
    "console.approvals.state.rejected": ("رد شد", "Rejected"),
    "console.approvals.approved_by": ("تأییدکننده", "Approved by"),
    "console.approvals.decided_at": ("زمان تصمیم", "Decided at"),
    "console.approvals.applied_at": ("زمان انجام", "Carried out at"),
    "console.approvals.result": ("نتیجه", "Result"),
    "console.approvals.unapplied": ("تأیید شده ولی نتیجه‌اش ثبت نشده است (کار در میانه متوقف شد یا هنوز در جریان است).", "Approved, but no result is recorded (the work stopped midway or is still under way)."),
    "console.approvals.wait": ("اگر تا {minutes} دقیقه پس از تأیید نتیجه‌ای ثبت نشود، می‌توانید آن را دوباره انجام دهید.", "If no result is recorded {minutes} minutes after the approval, you can carry it out again."),
    "console.approvals.unapplied_title": ("تأییدشده‌هایی که نتیجه‌شان ثبت نشده است", "Approved, with no result recorded"),
    "console.approvals.apply": ("انجام دوباره", "Carry it out again"),
    "console.approvals.applied": ("درخواست تأییدشده انجام شد.", "The approved request has been carried out."),
    "console.approvals.gone": ("این درخواست دیگر در انتظار نیست (پیش‌تر تصمیم گرفته شده است).", "This request is no longer pending (it has been decided already)."),
    "console.refused.self_approval": ("تأیید درخواستِ خودتان مجاز نیست؛ شخص دیگری باید آن را تأیید کند. این تلاش ثبت شد.", "You may not approve your own request; another person must. The attempt has been recorded."),
    "console.refused.approval_role": ("تصمیم دربارهٔ این درخواست نقش «{roles}» می‌خواهد. این تلاش ثبت شد.", "Deciding this request needs the role “{roles}”. The attempt has been recorded."),
    "console.roles": ("نقش‌ها", "Roles"),
    "console.roles.holders": ("دارندگان نقش", "Role holders"),
    "console.roles.person": ("شخص", "Person"),
    "console.roles.role": ("نقش", "Role"),
    "console.roles.granted_at": ("از", "Since"),
    "console.roles.none": ("هنوز کسی نقشی ندارد.", "Nobody holds a role yet."),
    "console.roles.request_revoke": ("درخواست گرفتن نقش", "Request revocation"),
    "console.roles.grant_heading": ("درخواست دادن نقش", "Request a role grant"),
    "console.roles.national_code": ("کد ملی", "National code"),
    "console.roles.national_code_hint": ("ده رقم؛ رقم‌های فارسی هم پذیرفته می‌شود", "Ten digits; Persian digits are accepted too"),
    "console.roles.request": ("ثبت درخواست", "Submit request"),
    "console.roles.requested": ("درخواست ثبت شد؛ مدیر دیگری باید آن را تأیید کند.", "Request recorded; another administrator must approve it."),
    "console.roles.pending": ("درخواست‌های در انتظار تأیید", "Requests awaiting approval"),
    "console.roles.kind.grant": ("دادن نقش", "Grant role"),
    "console.roles.kind.revoke": ("گرفتن نقش", "Revoke role"),
    "console.roles.describe": ("«{role}» به {person}", "“{role}” for {person}"),
    "console.roles.error.role": ("نقش را از فهرست برگزینید.", "Choose a role from the list."),
    "console.roles.error.holds": ("این شخص این نقش را دارد.", "This person already holds this role."),
    "console.roles.error.not_held": ("این شخص این نقش را ندارد.", "This person does not hold this role."),
    "console.roles.error.empty": ("کد ملی را وارد کنید.", "Enter the national code."),
    "console.roles.error.digits": ("کد ملی فقط رقم دارد.", "A national code holds digits only."),
    "console.roles.error.length": ("کد ملی ده رقم دارد.", "A national code has ten digits."),
    "console.roles.error.repeated-digits": ("کد ملی با یک رقم تکراری صادر نمی‌شود.", "No national code repeats one digit."),
    "console.roles.error.checksum": ("رقم کنترل کد ملی درست نیست؛ رقم‌ها را بررسی کنید.", "The national code's check digit does not match; check the digits."),
    "console.clients": ("کارخواه‌ها", "Clients"),
    "console.clients.one": ("کارخواه", "Client"),
    "console.clients.id": ("شناسه کارخواه", "Client ID"),
    "console.clients.name": ("نام", "Name"),
    "console.clients.policy": ("سیاست خدمت", "Service policy"),
    "console.clients.grants": ("گونه‌های مجوز", "Grant types"),
    "console.clients.state": ("وضعیت", "State"),
    "console.clients.enabled": ("فعال", "Enabled"),
    "console.clients.disabled": ("غیرفعال", "Disabled"),
    "console.clients.auth_method": ("روش احراز هویت کارخواه", "Client authentication"),
    "console.clients.redirect_uris": ("نشانی‌های بازگشت", "Redirect URIs"),
    "console.clients.roles": ("نقش‌های کارخواه", "Client roles"),
    "console.clients.legal_basis": ("مبنای قانونی", "Legal basis"),
    "console.clients.operations": ("عملیات مجاز", "Allowed operations"),
    "console.clients.person_disclosure": ("داده‌های شخص حقیقی که افشا می‌شود", "Person data disclosed"),
    "console.clients.entity_disclosure": ("داده‌های شخص حقوقی که افشا می‌شود", "Legal entity data disclosed"),
    "console.clients.min_acr": ("کمترین سطح اطمینان ورود", "Lowest sign-in assurance level"),
    "console.clients.rate_limits": ("سقف درخواست در دقیقه (کارخواه / هر شخص)", "Requests per minute (client / per person)"),
    "console.clients.no_policy": ("سیاست خدمت این کارخواه بارگذاری نشده است.", "This client's service policy is not loaded."),
    "console.clients.disable": ("غیرفعال کردن کارخواه", "Disable the client"),
    "console.clients.disable_explained": ("کارخواه دیگر توکن نمی‌گیرد و توکن‌هایش در کمتر از یک ثانیه رد می‌شوند. این کار ثبت می‌شود.", "The client gets no new tokens and the tokens it holds are refused within a second. This is recorded."),
    "console.clients.disabled_now": ("کارخواه غیرفعال شد.", "The client has been disabled."),
    "console.clients.not_found": ("چنین کارخواهی نیست.", "There is no such client."),
    "console.clients.own_client": ("کارخواه خود کنسول را نمی‌توان از کنسول غیرفعال کرد؛ همه مدیران بیرون می‌مانند.", "The console's own client cannot be disabled from the console: every administrator would be locked out."),
}
# fmt: on


def add_messages(messages: dict[str, tuple[str, str]]) -> None:
    """Add a page's (Persian, English) messages; a key already taken is a programming error."""
    taken = set(messages) & set(MESSAGES)
    if taken:
        raise ValueError(f"console messages defined twice: {sorted(taken)}")
    MESSAGES.update(messages)


def translate(key: str, language: Language, **values: object) -> str:
    """The message in ``language``; the login pages' catalogue answers keys the console's lacks."""
    fa, en = MESSAGES.get(key) or LOGIN_MESSAGES[key]
    text = fa if language.code == "fa" else en
    return text.format(**values) if values else text
