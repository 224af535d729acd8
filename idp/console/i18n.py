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
