"""The CA lifecycle page's words, Persian first and English."""

# ruff: noqa: E501  (sentences stay on one line so a translator reads each whole)

from __future__ import annotations

from idp.console.i18n import add_messages

# fmt: off
add_messages({
    "console.lifecycle": ("چرخهٔ عمر مرکز صدور", "CA lifecycle"),
    "console.lifecycle.explained": ("چرخش کلید، نصب گواهی مرکز صادرکننده و کنار گذاشتن صدورهای ناتمام را یک گرداننده درخواست می‌کند و گردانندهٔ دیگری تأیید؛ همان کاری انجام می‌شود که فرمان‌های hoviyat ca می‌کنند.", "Key rollover, installing an issuing CA certificate and failing unfinished issuances are requested by one CA operator and approved by another; approving does what the hoviyat ca commands do."),
    "console.lifecycle.authorities": ("نسل‌های کلید مراکز", "CA key generations"),
    "console.lifecycle.generation": ("نسل", "Generation"),
    "console.lifecycle.key_id": ("شناسهٔ کلید", "Key ID"),
    "console.lifecycle.state": ("وضعیت", "State"),
    "console.lifecycle.active": ("فعال", "Active"),
    "console.lifecycle.retired": ("بازنشسته", "Retired"),
    "console.lifecycle.awaiting": ("در انتظار امضای ریشه", "Awaiting the root's signature"),
    "console.lifecycle.ca": ("مرکز صادرکننده", "Issuing CA"),
    "console.lifecycle.reason": ("دلیل (در گزارش ممیزی می‌ماند)", "Why (kept in the audit log)"),
    "console.lifecycle.rollover": ("چرخش کلید مرکز صادرکننده", "Issuing CA key rollover"),
    "console.lifecycle.rollover_explained": ("کلید تازه‌ای ساخته و با ریشه امضا می‌شود؛ گواهی‌های صادرشده با کلید پیشین معتبر می‌مانند.", "A new key is made and certified by the root; certificates signed with the previous key stay valid."),
    "console.lifecycle.request_rollover": ("درخواست چرخش", "Request the rollover"),
    "console.lifecycle.install": ("نصب گواهی مرکز صادرکننده (امضای ریشهٔ برون‌خط)", "Install an issuing CA certificate (signed by the offline root)"),
    "console.lifecycle.chain_file": ("پرونده زنجیره (خروجی ca sign-issuing، PEM)", "Chain file (output of ca sign-issuing, PEM)"),
    "console.lifecycle.chain_text": ("یا متن PEM زنجیره", "or the chain's PEM text"),
    "console.lifecycle.request_install": ("درخواست نصب", "Request the installation"),
    "console.lifecycle.fail_pending": ("کنار گذاشتن صدورهای ناتمام", "Fail unfinished issuances"),
    "console.lifecycle.fail_explained": ("صدورهایی که فرایندشان پیش از پایان از کار افتاد «ناموفق» ثبت می‌شوند؛ شماره‌سریال‌ها دوباره به کار نمی‌روند.", "Issuances whose process died before completing are marked failed; their serial numbers are never reused."),
    "console.lifecycle.minutes": ("قدیمی‌تر از (دقیقه)", "Older than (minutes)"),
    "console.lifecycle.request_fail": ("درخواست کنار گذاشتن", "Request it"),
    "console.lifecycle.crl": ("انتشار فهرست ابطال (CRL) هم‌اکنون", "Publish a CRL now"),
    "console.lifecycle.crl_explained": ("فهرست ابطال تازه‌ای از وضعیت کنونی امضا می‌شود؛ وضعیت هیچ گواهی تغییر نمی‌کند، پس تأیید دوم لازم ندارد. ثبت می‌شود.", "A fresh CRL of the current revocation state is signed; no certificate changes, so no second approval is needed. This is recorded."),
    "console.lifecycle.publish": ("انتشار", "Publish"),
    "console.lifecycle.requested": ("درخواست ثبت شد؛ گردانندهٔ دیگری باید آن را تأیید کند.", "Request recorded; another CA operator must approve it."),
    "console.lifecycle.crl_published": ("فهرست ابطال تازه منتشر شد.", "A fresh CRL has been published."),
    "console.lifecycle.crl_failed": ("فهرست ابطال امضا نشد: {detail}", "The CRL could not be signed: {detail}"),
    "console.lifecycle.bad_ca": ("یکی از مراکز صادرکننده را برگزینید.", "Choose one of the issuing CAs."),
    "console.lifecycle.no_ca": ("مرکز {ca} هنوز ساخته نشده است (hoviyat ca init).", "CA {ca} does not exist yet (hoviyat ca init)."),
    "console.lifecycle.no_reason": ("دلیل درخواست را بنویسید.", "Say why."),
    "console.lifecycle.bad_minutes": ("سن را به دقیقه بنویسید: از ۱ تا {most}.", "Give the age in minutes, 1 to {most}."),
    "console.lifecycle.bad_chain": ("زنجیره خوانده نشد: یک یا چند گواهی PEM بفرستید (خروجی ca sign-issuing). چیزی ذخیره نشد.", "The chain could not be read: send one or more PEM certificates (the output of ca sign-issuing). Nothing was stored."),
    "console.lifecycle.no_pending": ("موضوع و کلید این گواهی با هیچ درخواست در انتظار اینجا (ca csr) نمی‌خواند. چیزی ذخیره نشد.", "The certificate's subject and key match no pending request here (ca csr). Nothing was stored."),
    "console.lifecycle.not_root_signed": ("این گواهی را ریشهٔ این مرکز امضا نکرده است. چیزی ذخیره نشد.", "The certificate was not signed by this CA's root. Nothing was stored."),
    "console.lifecycle.kind.rollover": ("چرخش کلید مرکز صادرکننده", "Issuing CA key rollover"),
    "console.lifecycle.kind.install": ("نصب گواهی مرکز صادرکننده", "Issuing CA certificate installation"),
    "console.lifecycle.kind.fail_pending": ("کنار گذاشتن صدورهای ناتمام", "Failing unfinished issuances"),
    "console.lifecycle.describe_rollover": ("{ca} پس از نسل {generation} — {reason}", "{ca} after generation {generation} — {reason}"),
    "console.lifecycle.describe_install": ("{ca} نسل {generation}، سریال {serial} — {reason}", "{ca} generation {generation}, serial {serial} — {reason}"),
    "console.lifecycle.describe_fail": ("قدیمی‌تر از {minutes} دقیقه — {reason}", "older than {minutes} minutes — {reason}"),
})
# fmt: on
