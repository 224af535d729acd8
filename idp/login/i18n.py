"""The pages' words, Persian first and English, chosen per request.

A page speaks the language named by ``lang`` (the switch link and every form
carry it), else the first supported tag of the request's ``ui_locales`` (OIDC
Core §3.1.2.1), else Persian.
"""

# ruff: noqa: E501  (sentences stay on one line so a translator reads each whole)

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup, escape

LANGUAGES = ("fa", "en")
DEFAULT = "fa"


@dataclass(frozen=True)
class Language:
    code: str
    direction: str
    other: str


FA = Language("fa", "rtl", "en")
EN = Language("en", "ltr", "fa")


def pick_language(
    explicit: str | None, ui_locales: Iterable[str] | None, accept_language: str | None = None
) -> Language:
    candidates = [explicit] if explicit else []
    candidates += list(ui_locales or ())
    candidates += _accepted_languages(accept_language or "")
    for tag in candidates:
        primary = (tag or "").split("-")[0].lower()
        if primary == "fa":
            return FA
        if primary == "en":
            return EN
    return FA


def _accepted_languages(header: str) -> list[str]:
    """RFC 9110 §12.5.4: the tags of Accept-Language, most preferred first."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, parameters = item.strip().partition(";")
        quality = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


# Numbers with separators inside (a Gregorian date, a masked mobile number):
# in right-to-left text the bidi algorithm lays their parts out right to left
# (0901***2444 reads 2444***0901), so they are isolated as left-to-right.
_LTR_RUN = re.compile(r"\+?[0-9۰-۹]+(?:[-/*.:]+[0-9۰-۹]+)+")


def isolate_latin(text: str, language: Language) -> Markup:
    """``text`` escaped for HTML, with such numbers in ``<bdi dir="ltr">`` on RTL pages."""
    escaped = str(escape(text))
    if language.direction != "rtl":
        return Markup(escaped)  # noqa: S704 (escaped above)
    return Markup(  # noqa: S704 (escaped above; the runs hold only digits and separators)
        _LTR_RUN.sub(lambda run: f'<bdi dir="ltr">{run.group(0)}</bdi>', escaped)
    )


# One message a line, as E501 is off above: a translator reads each whole.
# fmt: off
MESSAGES: dict[str, tuple[str, str]] = {
    # key: (fa, en)
    "site": ("هویت — ورود یکپارچه", "Hoviyat — single sign-on"),
    "switch": ("English", "فارسی"),
    "login.title": ("ورود", "Log in"),
    "login.intro": (
        "برای ورود به «{client}» کد ملی و تاریخ تولد خود را وارد کنید.",
        "Enter your national code and date of birth to log in to “{client}”.",
    ),
    "national_code": ("کد ملی", "National code"),
    "national_code.hint": ("۱۰ رقم، با هر نوع رقم", "10 digits, in any digit script"),
    "birth_date": ("تاریخ تولد", "Date of birth"),
    "birth_date.hint": (
        "شمسی مانند ۱۳۷۰/۰۵/۱۲ یا میلادی مانند 1991-08-03",
        "Jalali like 1370/05/12 or Gregorian like 1991-08-03",
    ),
    "continue": ("ادامه", "Continue"),
    "cancel": ("انصراف و بازگشت به برنامه", "Cancel and return to the app"),
    "mobile.title": ("تأیید با تلفن همراه", "Confirm with your mobile phone"),
    "mobile.intro": (
        "«{client}» سطح اطمینان بالاتری می‌خواهد. شماره تلفن همراهی را که به نام خود شماست وارد کنید تا کد یک‌بارمصرف برایتان پیامک شود.",
        "“{client}” needs a higher level of assurance. Enter the mobile number registered in your name and we will text you a one-time code.",
    ),
    "mobile": ("شماره تلفن همراه", "Mobile number"),
    "mobile.hint": ("مانند ۰۹۱۲۱۲۳۴۵۶۷", "for example 09121234567"),
    "send_code": ("ارسال کد", "Send code"),
    "otp.title": ("کد یک‌بارمصرف", "One-time code"),
    "otp.intro": (
        "کد ۶ رقمی به شماره {mobile} پیامک شد. این کد تا {minutes} دقیقه معتبر است.",
        "A 6-digit code was texted to {mobile}. It is valid for {minutes} minutes.",
    ),
    "otp": ("کد ۶ رقمی", "6-digit code"),
    "verify": ("تأیید", "Verify"),
    "resend": ("ارسال دوباره کد", "Send a new code"),
    "entity.title": ("ورود از طرف شخص حقوقی", "Acting for a legal entity"),
    "entity.intro": (
        "«{client}» می‌خواهد بداند از طرف کدام شخص حقوقی اقدام می‌کنید.",
        "“{client}” asks which legal entity you are acting for.",
    ),
    "entity.listed": ("اشخاص حقوقی که شما نماینده آن‌ها هستید", "Entities you represent"),
    "entity.none_listed": (
        "اداره ثبت اسناد شما را نماینده هیچ شخص حقوقی نمی‌داند.",
        "The deeds registry does not list you as a representative of any entity.",
    ),
    "entity.role": (
        "سمت: {role}، حق امضا: {authority}",
        "Role: {role}, signing authority: {authority}",
    ),
    "entity_national_id": ("شناسه ملی شخص حقوقی", "National identifier of the entity"),
    "entity_national_id.hint": ("۱۱ رقم", "11 digits"),
    "choose": ("انتخاب", "Choose"),
    "consent.title": ("اجازه دسترسی", "Permission"),
    "consent.intro": (
        "«{client}» ({service}) می‌خواهد این اطلاعات شما را دریافت کند:",
        "“{client}” ({service}) would like to receive these facts about you:",
    ),
    "consent.entity": (
        "و این که شما از طرف «{entity}» اقدام می‌کنید.",
        "and that you are acting for “{entity}”.",
    ),
    "consent.basis": ("مبنای قانونی", "Legal basis"),
    "consent.remember": (
        "این اجازه برای همین برنامه و همین اطلاعات به خاطر سپرده می‌شود و هر زمان در صفحه «اجازه‌های من» قابل لغو است.",
        "This permission is remembered for this app and these facts; you can withdraw it at any time under “My permissions”.",
    ),
    "consent.nothing": ("فقط این که شما وارد شده‌اید.", "Only that you have logged in."),
    "allow": ("اجازه می‌دهم", "Allow"),
    "deny": ("اجازه نمی‌دهم", "Deny"),
    "consents.title": ("اجازه‌های من", "My permissions"),
    "consents.none": ("هیچ اجازه‌ای ثبت نشده است.", "You have given no permissions."),
    "consents.granted": ("داده شده در {date}", "given on {date}"),
    "revoke": ("لغو اجازه", "Withdraw"),
    "consents.revoked": ("اجازه لغو شد.", "The permission was withdrawn."),
    "history.title": ("سابقه استعلام‌های من", "Who looked me up"),
    "history.link": ("سابقه استعلام‌های من", "Who looked me up"),
    "history.none": ("هنوز هیچ سازمانی اطلاعات شما را استعلام نکرده است.", "No one has looked you up yet."),
    "history.when": ("زمان (به وقت تهران)", "When (Tehran time)"),
    "history.event": ("رویداد", "Event"),
    "history.agency": ("سازمان", "Agency"),
    "history.service": ("خدمت", "Service"),
    "history.legal_basis": ("مبنای قانونی", "Legal basis"),
    "history.outcome": ("نتیجه", "Outcome"),
    "history.tracking_code": ("کد پیگیری", "Tracking code"),
    "history.older": ("موارد قدیمی‌تر", "Older entries"),
    "history.bad_cursor": ("این صفحه بخشی از سابقه شما نیست.", "That page is not part of your history."),
    "history.consents": ("اجازه‌های من", "My permissions"),
    "logout": ("خروج", "Log out"),
    "logged_out": ("از حساب خود خارج شدید.", "You have logged out."),
    "not_logged_in": (
        "وارد نشده‌اید. برای دیدن اجازه‌ها ابتدا از طریق یکی از برنامه‌ها وارد شوید.",
        "You are not logged in. Log in through an app first to see your permissions.",
    ),
    "logged_in_as": ("وارد شده با کد ملی {code}", "Logged in with national code {code}"),
    # Errors, shown next to the field they concern.
    "error.title": ("خطا", "Error"),
    "err.required": ("این بخش را پر کنید.", "Please fill in this field."),
    "err.national_code.digits": (
        "کد ملی فقط از رقم تشکیل می‌شود.",
        "A national code has only digits.",
    ),
    "err.national_code.length": (
        "کد ملی باید ۱۰ رقم باشد.",
        "A national code has exactly 10 digits.",
    ),
    "err.national_code.repeated-digits": (
        "کدی با یک رقم تکراری صادر نمی‌شود؛ کد ملی خود را دوباره بررسی کنید.",
        "No national code repeats one digit; please check yours.",
    ),
    "err.national_code.checksum": (
        "رقم کنترل کد ملی درست نیست؛ احتمالاً یک رقم اشتباه وارد شده است.",
        "The check digit does not match; a digit is probably mistyped.",
    ),
    "err.birth_date": (
        "تاریخ را به شکل ۱۳۷۰/۰۵/۱۲ یا 1991-08-03 وارد کنید.",
        "Enter the date like 1370/05/12 or 1991-08-03.",
    ),
    "err.no_match": (
        "کد ملی و تاریخ تولد با سوابق ثبت احوال مطابقت ندارد.",
        "The national code and date of birth do not match the civil registry.",
    ),
    "err.deceased": (
        "ثبت احوال این شخص را فوت‌شده ثبت کرده است؛ ورود با این کد ملی ممکن نیست. اگر این اشتباه است به دفتر ثبت احوال مراجعه کنید.",
        "The civil registry records this person as deceased, so this national code cannot log in. If this is a mistake, please visit a civil registry office.",
    ),
    "err.too_many_logins": (
        "تلاش‌های زیادی برای این کد ملی انجام شده است. {minutes} دقیقه دیگر دوباره امتحان کنید.",
        "Too many tries for this national code. Try again in {minutes} minutes.",
    ),
    "err.mobile": (
        "شماره همراه را به شکل ۰۹۱۲۱۲۳۴۵۶۷ وارد کنید.",
        "Enter the mobile number like 09121234567.",
    ),
    "err.mobile_not_owned": (
        "این شماره در سامانه مالکیت خطوط به نام شما ثبت نشده است. شماره‌ای را وارد کنید که به نام خودتان است.",
        "The mobile ownership registry does not list this number in your name. Enter a number registered to you.",
    ),
    "err.too_many_codes": (
        "کدهای زیادی فرستاده شده است. {minutes} دقیقه دیگر دوباره امتحان کنید.",
        "Too many codes were sent. Try again in {minutes} minutes.",
    ),
    "err.sms_unavailable": (
        "ارسال پیامک اکنون ممکن نیست. چند دقیقه دیگر دوباره امتحان کنید.",
        "Text messages cannot be sent right now. Please try again in a few minutes.",
    ),
    "err.otp_format": ("کد ۶ رقم است.", "The code has 6 digits."),
    "err.otp_wrong": (
        "کد درست نیست. {left} بار دیگر می‌توانید امتحان کنید.",
        "That code is not right. You have {left} tries left.",
    ),
    "err.otp_expired": (
        "مهلت این کد تمام شده است. کد تازه‌ای بخواهید.",
        "This code has expired. Ask for a new one.",
    ),
    "err.otp_exhausted": (
        "این کد بیش از حد اشتباه وارد شد و باطل شد. کد تازه‌ای بخواهید.",
        "This code was entered wrongly too many times and no longer works. Ask for a new one.",
    ),
    "err.entity_id": (
        "شناسه ملی شخص حقوقی ۱۱ رقم است؛ آن را دوباره بررسی کنید.",
        "A legal entity's national identifier has 11 digits; please check it.",
    ),
    "err.entity_not_representative": (
        "اداره ثبت اسناد شما را نماینده این شخص حقوقی نمی‌داند.",
        "The deeds registry does not list you as a representative of this entity.",
    ),
    "err.entity_dissolved": (
        "این شخص حقوقی منحل شده است و کسی نمی‌تواند از طرف آن اقدام کند.",
        "This entity has been dissolved; nobody can act for it any more.",
    ),
    "err.entity_suspended": (
        "فعالیت این شخص حقوقی تعلیق شده است و اکنون نمی‌توان از طرف آن اقدام کرد.",
        "This entity is suspended; nobody can act for it at present.",
    ),
    "err.entity_in_liquidation": (
        "این شخص حقوقی در حال تصفیه است و فقط مدیر تصفیه می‌تواند از طرف آن اقدام کند.",
        "This entity is being wound up; only its liquidator can act for it.",
    ),
    "err.representation_expired": (
        "نمایندگی شما برای این شخص حقوقی در تاریخ {date} به پایان رسیده است.",
        "Your representation of this entity ended on {date}.",
    ),
    "err.representation_not_started": (
        "نمایندگی شما برای این شخص حقوقی از تاریخ {date} آغاز می‌شود.",
        "Your representation of this entity starts on {date}.",
    ),
    "err.level_unavailable": (
        "این برنامه ورود با گواهی دیجیتال (سطح اطمینان بالا) می‌خواهد که در این صفحه ممکن نیست.",
        "This app requires login with a digital certificate (level high), which these pages cannot offer.",
    ),
    "err.csrf": (
        "این فرم منقضی شده یا از این سایت ارسال نشده است. به صفحه قبل برگردید و دوباره امتحان کنید.",
        "This form expired or was not sent from this site. Go back and try again.",
    ),
    "err.interaction": (
        "این درخواست ورود منقضی شده یا قبلاً استفاده شده است. به برنامه برگردید و دوباره وارد شوید.",
        "This login request has expired or was already used. Go back to the app and start again.",
    ),
    "err.registry": (
        "سامانه {registry} اکنون پاسخ نمی‌دهد. یک دقیقه دیگر دوباره امتحان کنید.",
        "The {registry} registry is not answering. Please try again in a minute.",
    ),
    "err.otp_used": (
        "این کد قبلاً استفاده شده یا کد تازه‌تری جای آن را گرفته است. آخرین کدی را که پیامک شد وارد کنید یا کد تازه‌ای بخواهید.",
        "This code was already used, or a newer one replaced it. Enter the latest code texted to you or ask for a new one.",
    ),
    "err.certificate_missing": (
        "مرورگر گواهی‌ای نفرستاد. کارت یا کلید خود را وصل کنید، وقتی مرورگر پرسید گواهی ورود خود را انتخاب کنید و دوباره امتحان کنید.",
        "Your browser sent no certificate. Connect your card or key, choose your login certificate when the browser asks, and try again.",
    ),
    "err.certificate_malformed": (
        "گواهی‌ای که مرورگر فرستاد خوانده نشد. دوباره امتحان کنید.",
        "The certificate your browser sent could not be read. Please try again.",
    ),
    "err.certificate_not_ours": (
        "این گواهی، گواهی ورود شخص حقیقی صادرشده از هویت نیست. با گواهی ورود شخصی خود (کارت ملی هوشمند) وارد شوید.",
        "This is not a personal login certificate issued by Hoviyat. Log in with your own personal login certificate (smart national card).",
    ),
    "err.certificate_expired": (
        "این گواهی اکنون معتبر نیست (منقضی شده یا هنوز آغاز نشده است).",
        "This certificate is not valid now (it has expired or is not valid yet).",
    ),
    "err.certificate_revoked": (
        "این گواهی ابطال شده است و دیگر برای ورود پذیرفته نمی‌شود.",
        "This certificate has been revoked and can no longer be used to log in.",
    ),
    "err.certificate_status_unavailable": (
        "وضعیت اعتبار گواهی شما اکنون قابل بررسی نیست، پس ورود با آن ممکن نیست. چند دقیقه دیگر دوباره امتحان کنید.",
        "Your certificate's status cannot be checked right now, so it cannot be used to log in. Please try again in a few minutes.",
    ),
    "err.certificate_not_in_registry": (
        "ثبت احوال شخصی با کد ملی این گواهی ندارد.",
        "The civil registry has no person with this certificate's national code.",
    ),
    "err.certificate_other_person": (
        "این گواهی متعلق به شخص دیگری است، نه کسی که در این مرورگر وارد شده است. با گواهی خودتان وارد شوید.",
        "This certificate belongs to someone other than the person logged in in this browser. Use your own certificate.",
    ),
    "high.title": ("ورود با سطح اطمینان بالا", "Sign in at level high"),
    "high.intro": (
        "«{client}» سطح اطمینان بالا می‌خواهد. با گذرکلید (passkey) یا کلید امنیتی خود، یا با گواهی دیجیتال خود وارد شوید.",
        "«{client}» requires level high. Sign in with your passkey or security key, or with your digital certificate.",
    ),
    "high.passkey_title": ("گذرکلید یا کلید امنیتی", "Passkey or security key"),
    "high.passkey_sign_in": ("ورود با گذرکلید", "Sign in with a passkey"),
    "high.register_intro": (
        "هنوز گذرکلیدی ثبت نکرده‌اید. هویت و شماره همراه شما تأیید شده است، پس اکنون می‌توانید گذرکلیدی ثبت کنید و با آن وارد شوید. دستگاه از شما رمز یا اثر انگشت می‌خواهد.",
        "You have no passkey yet. Your identity and mobile number are confirmed, so you can register one now and sign in with it. Your device will ask for its PIN or your fingerprint.",
    ),
    "high.register": ("ثبت گذرکلید و ورود", "Register a passkey and sign in"),
    "high.register_another": (
        "ثبت گذرکلید تازه (دستگاه دیگر) و ورود",
        "Register a new passkey (another device) and sign in",
    ),
    "high.needs_js": (
        "ورود با گذرکلید به جاوااسکریپت نیاز دارد که در این مرورگر خاموش است. می‌توانید با گواهی دیجیتال وارد شوید.",
        "Signing in with a passkey needs JavaScript, which is off in this browser. You can sign in with your certificate instead.",
    ),
    "high.unsupported": (
        "این مرورگر از گذرکلید پشتیبانی نمی‌کند. می‌توانید با گواهی دیجیتال وارد شوید.",
        "This browser does not support passkeys. You can sign in with your certificate instead.",
    ),
    "high.failed": (
        "ورود با گذرکلید انجام نشد. دوباره امتحان کنید یا با گواهی دیجیتال وارد شوید.",
        "Signing in with the passkey did not work. Try again, or sign in with your certificate.",
    ),
    "high.certificate_title": ("گواهی دیجیتال", "Digital certificate"),
    "high.certificate_intro": (
        "اگر کارت ملی هوشمند یا گواهی ورود شخصی دارید، آن را وصل کنید:",
        "If you have a smart national card or a personal login certificate, connect it:",
    ),
    "high.certificate": ("ورود با گواهی دیجیتال", "Sign in with your certificate"),
    "passkeys.title": ("گذرکلیدهای من", "My passkeys"),
    "passkeys.created": ("ثبت: {date}", "Added: {date}"),
    "passkeys.last_used": ("آخرین استفاده: {date}", "Last used: {date}"),
    "passkeys.remove": ("حذف این گذرکلید", "Remove this passkey"),
    "passkeys.none": ("هنوز گذرکلیدی ثبت نکرده‌اید.", "You have no passkey yet."),
    "passkeys.add": ("افزودن گذرکلید", "Add a passkey"),
    "passkeys.failed": (
        "گذرکلید ثبت نشد. دوباره امتحان کنید.",
        "The passkey was not added. Please try again.",
    ),
    "passkeys.needs_js": (
        "افزودن گذرکلید به جاوااسکریپت نیاز دارد که در این مرورگر خاموش است.",
        "Adding a passkey needs JavaScript, which is off in this browser.",
    ),
    "passkeys.substantial_first": (
        "برای افزودن گذرکلید، شماره همراه شما باید در همین ورود تأیید شده باشد (ورود به خدمتی با سطح اطمینان متوسط یا بالاتر).",
        "To add a passkey, your mobile number must have been confirmed in this login (log in to a service at level substantial or higher).",
    ),
    "otp.already_accepted": (
        "این کد پیش‌تر پذیرفته شد و شماره همراه شما تأیید شده است (احتمالاً فرم دو بار ارسال شد). ادامه دهید.",
        "This code was already accepted and your mobile number is confirmed (the form was probably sent twice). Please continue.",
    ),
    "err.authorize.client": (
        "برنامه‌ای که شما را به اینجا فرستاده ثبت نشده یا غیرفعال است. به آن برنامه برگردید و به پشتیبانی آن خبر دهید.",
        "The app that sent you here is not registered or is disabled. Go back to the app and tell its support.",
    ),
    "err.authorize.redirect_uri": (
        "نشانی بازگشتی که برنامه خواسته برای آن ثبت نشده است؛ برای امنیت شما به آنجا فرستاده نشدید. به برنامه برگردید و دوباره امتحان کنید.",
        "The return address the app asked for is not registered for it, so for your safety you were not sent there. Go back to the app and try again.",
    ),
    "err.authorize.request": (
        "درخواست ورودی که برنامه فرستاده ناقص یا نادرست است. به برنامه برگردید و دوباره امتحان کنید.",
        "The login request the app sent is incomplete or malformed. Go back to the app and try again.",
    ),
    # A refusal at /authorize/complete or /logout, shown to a browser (the problem's slug).
    "err.problem": (
        "این درخواست انجام نشد. به برنامه برگردید و دوباره امتحان کنید.",
        "This request could not be completed. Go back to the app and try again.",
    ),
    "err.problem.interaction-unknown": (
        "این ورود پیدا نشد یا منقضی شده است. به برنامه برگردید و دوباره وارد شوید.",
        "This login was not found or has expired. Go back to the app and log in again.",
    ),
    "err.problem.interaction-invalid": (
        "درخواست ورودی که برنامه فرستاده ناقص یا نادرست است. به برنامه برگردید و دوباره امتحان کنید.",
        "The login request the app sent is incomplete or malformed. Go back to the app and try again.",
    ),
    "err.problem.interaction-used": (
        "این ورود پیش‌تر کامل شده است. از برنامه دوباره شروع کنید.",
        "This login was already completed. Start again from the app.",
    ),
    "err.problem.interaction-incomplete": (
        "ورود هنوز تمام نشده است. مراحل ورود را تا پایان انجام دهید.",
        "The login is not finished yet. Complete its steps before continuing.",
    ),
    "err.problem.client-disabled": (
        "برنامه‌ای که شما را به اینجا فرستاده در میانه ورود غیرفعال شد. به پشتیبانی آن برنامه خبر دهید.",
        "The app that sent you here was disabled during the login. Tell its support.",
    ),
    "err.problem.logout-request-invalid": (
        "درخواست خروجی که برنامه فرستاده نادرست است یا نشانی بازگشتی دارد که برای آن ثبت نشده؛ برای امنیت شما به آنجا فرستاده نشدید و از حساب خود خارج نشدید.",
        "The app's logout request is malformed or names a return address not registered for it; for your safety you were not sent there and you are still logged in.",
    ),
    "err.problem.id-token-hint-invalid": (
        "درخواست خروجی که برنامه فرستاده معتبر نیست؛ از حساب خود خارج نشدید. به برنامه برگردید و دوباره امتحان کنید.",
        "The app's logout request is not valid; you are still logged in. Go back to the app and try again.",
    ),
    "logout.title": ("خروج", "Log out"),
    "logout.question": ("آیا می‌خواهید از حساب خود خارج شوید؟", "Do you want to log out?"),
    "logout.done": ("از حساب خود خارج شدید.", "You have logged out."),
    "err.client": (
        "برنامه‌ای که شما را به اینجا فرستاده ثبت نشده یا غیرفعال است.",
        "The app that sent you here is not registered or is disabled.",
    ),
    # The registries a login asks, named in the outage message (err.registry).
    "registry.civil": ("ثبت احوال", "civil"),
    "registry.mobile": ("مالکیت خطوط", "mobile ownership"),
    "registry.deeds": ("ثبت اسناد", "deeds"),
    # The text message carrying a one-time code.
    "sms.passkey_added": (
        "هویت: یک کلید عبور (passkey) به حساب شما افزوده شد. اگر این کار شما نبود، "
        "آن را در صفحهٔ کلیدهای عبور حذف کنید و با پشتیبانی تماس بگیرید.",
        "Hoviyat: a passkey was added to your account. If this was not you, "
        "remove it on your passkeys page and contact support.",
    ),
    "sms.code": (
        "کد ورود هویت: {code}\nبرای ورود به «{client}». این کد را به هیچ‌کس ندهید.",
        "Hoviyat login code: {code}\nTo log in to “{client}”. Never share this code.",
    ),
    # The attestation pages (the clerk's check page, the holder's own page).
    "attest.site": ("هویت", "Hoviyat"),
    "attest.check.title": ("بررسی گواهی هویت", "Check an identity attestation"),
    "attest.check.valid": ("این گواهی معتبر است", "This attestation is valid"),
    "attest.check.invalid": ("این گواهی معتبر نیست", "This attestation is NOT valid"),
    "attest.check.code_label": ("کد بررسی", "Verification code"),
    "attest.check.token_label": ("یا متن کامل گواهی را اینجا بچسبانید", "or paste the whole attestation here"),
    "attest.check.audience_label": ("گیرنده: اگر گواهی برای گیرنده‌ای صادر شده، شناسه خودتان", "Recipient: if the attestation names one, your identifier"),
    "attest.check.submit": ("بررسی", "Check"),
    "attest.check.unknown_code": ("کدی با این مشخصات یافت نشد یا منقضی شده است.", "No attestation has this code, or it has expired."),
    "attest.check.bad_code": ("کد بررسی ۱۶ نویسه است، مانند K7Q2-9MXD-4HNB-R8TW.", "A verification code has 16 characters, like K7Q2-9MXD-4HNB-R8TW."),
    "attest.check.empty": ("کد بررسی یا متن گواهی را وارد کنید.", "Enter a verification code or paste an attestation."),
    "attest.holder.title": ("گواهی هویت به جای کپی مدارک", "Identity attestations instead of photocopies"),
    "attest.holder.not_logged_in": ("برای دریافت گواهی، ابتدا از طریق یکی از خدمات با هویت وارد شوید.", "Log in through a service that uses Hoviyat first."),
    "attest.holder.low_level": ("برای دریافت گواهی باید با کد یک‌بارمصرف تلفن همراه وارد شده باشید.", "Attestations need a login confirmed with a one-time code to your mobile."),
    "attest.holder.forged": ("فرم منقضی شده است؛ صفحه را دوباره باز کنید.", "This form has expired; open the page again."),
    "attest.holder.purpose": ("هدف (برای چه کاری؟)", "Purpose (what is it for?)"),
    "attest.holder.recipient": ("گیرنده (اختیاری)", "Recipient (optional)"),
    "attest.holder.facts": ("واقعیت‌هایی که در گواهی می‌آید", "Facts to include"),
    "attest.holder.age_over": ("بالای چند سال؟ (مثلاً ۱۸؛ بدون افشای تاریخ تولد)", "Over which age? (e.g. 18; the birth date is not disclosed)"),
    "attest.holder.representation": ("نمایندگی شخص حقوقی", "Representation of the legal entity"),
    "attest.holder.validity_days": ("اعتبار (روز)", "Validity (days)"),
    "attest.holder.submit": ("صدور گواهی", "Issue the attestation"),
    "attest.holder.issued": ("گواهی صادر شد", "Attestation issued"),
    "attest.holder.code": ("کد بررسی برای متصدی", "Verification code for the clerk"),
    "attest.holder.check": ("صفحه بررسی", "Check page"),
    "attest.holder.jwt": ("گواهی (JWT)", "Attestation (JWT)"),
    "attest.holder.sd_jwt": ("گواهی با افشای انتخابی (SD-JWT)", "Attestation with selective disclosure (SD-JWT)"),
    "attest.holder.expires_at": ("معتبر تا", "Valid until"),
    "attest.holder.mine": ("گواهی‌های من", "My attestations"),
    "attest.holder.revoke": ("ابطال", "Revoke"),
    "attest.holder.revoked": ("باطل شده", "revoked"),
    "attest.holder.back": ("بازگشت", "Back"),
    "attest.holder.none": ("هنوز گواهی صادر نشده است.", "No attestation issued yet."),
    # The offline verifier's report (check page, CLI, API).
    "verify.stage.format": ("قالب", "Format"),
    "verify.stage.chain": ("زنجیره گواهی تا ریشه هویت", "Certificate chain to the Hoviyat root"),
    "verify.stage.signature": ("امضای صادرکننده", "Issuer signature"),
    "verify.stage.validity": ("دوره اعتبار", "Validity period"),
    "verify.stage.disclosures": ("واقعیت‌های افشاشده", "Disclosed facts"),
    "verify.stage.key_binding": ("پیوند کلید دارنده", "Holder key binding"),
    "verify.stage.status": ("وضعیت ابطال", "Revocation status"),
    "verify.word.valid": ("معتبر", "VALID"),
    "verify.word.invalid": ("نامعتبر", "INVALID"),
    "verify.word.passed": ("تأیید شد", "passed"),
    "verify.word.failed": ("رد شد", "FAILED"),
    "verify.word.skipped": ("بررسی نشد", "not checked"),
    "verify.word.not_reached": ("نرسید", "not reached"),
    "verify.word.issuer": ("صادرکننده", "Issuer"),
    "verify.word.signer": ("امضاکننده", "Signed by"),
    "verify.word.issued_at": ("تاریخ صدور", "Issued"),
    "verify.word.expires_at": ("تاریخ انقضا", "Expires"),
    "verify.word.purpose": ("هدف", "Purpose"),
    "verify.word.recipient": ("گیرنده", "Recipient"),
    "verify.word.tracking_code": ("کد پیگیری", "Tracking code"),
    "verify.word.facts": ("واقعیت‌ها", "Facts"),
    "verify.fact.given_name": ("نام", "Given name"),
    "verify.fact.family_name": ("نام خانوادگی", "Family name"),
    "verify.fact.father_name": ("نام پدر", "Father's name"),
    "verify.fact.birthdate": ("تاریخ تولد", "Birth date"),
    "verify.fact.national_code": ("کد ملی", "National code"),
    "verify.fact.postal_code": ("کد پستی", "Postal code"),
    "verify.fact.alive": ("در قید حیات", "Alive"),
    "verify.fact.representation": ("نماینده", "Representative of"),
    "verify.fact.age_over": ("{years} سال یا بیشتر", "Aged {years} or over"),
    "verify.word.yes": ("بله", "yes"),
    "verify.word.no": ("خیر", "no"),
}
# fmt: on

# What the consent screen says a claim reveals, in plain words.
CLAIM_LABELS: dict[str, tuple[str, str]] = {
    "given_name": ("نام", "first name"),
    "family_name": ("نام خانوادگی", "last name"),
    "name": ("نام و نام خانوادگی", "full name"),
    "father_name": ("نام پدر", "father's name"),
    "birthdate": ("تاریخ تولد", "date of birth"),
    "gender": ("جنسیت", "gender"),
    "address": ("کد پستی", "postal code"),
    "national_code": ("کد ملی", "national code"),
    "phone_number": ("شماره تلفن همراه تأییدشده", "verified mobile number"),
    "phone_number_verified": ("تأیید شدن شماره همراه", "that your mobile number is verified"),
    "verified_claims": (
        "گواهی این که اطلاعات بالا از ثبت احوال آمده است",
        "proof that the facts above come from the civil registry",
    ),
    "legal_entity": (
        "شخص حقوقی که از طرف آن اقدام می‌کنید، سمت و حق امضای شما",
        "the entity you act for, your role and signing authority",
    ),
}


def translate(key: str, language: Language, **values: object) -> str:
    fa, en = MESSAGES[key]
    text = fa if language.code == "fa" else en
    return text.format(**values) if values else text


def claim_label(claim: str, language: Language) -> str:
    labels = CLAIM_LABELS.get(claim)
    if labels is None:
        return claim
    return labels[0] if language.code == "fa" else labels[1]


def digits_for(text: str, language: Language) -> str:
    """Persian pages show Persian digits."""
    if language.code != "fa":
        return text
    return text.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
