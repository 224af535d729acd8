"""An auditor's search as the console carries it: parsed from the form, sealed into the URL.

The form is posted; the page then redirects to ``/console/audit?q=<sealed>``,
where ``q`` is the search encrypted and authenticated (AES-GCM under a key
derived from the server's pepper). A national code typed in the form is turned
into its subject hash before sealing, so it is in no URL, history entry,
proxy log or page afterwards, not even as a hash anyone can read off the link.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.audit.log import subject_hash
from idp.storage.audit_entries import EntryFilter, Position
from verifiers.identifiers import IdentifierError, validate_national_code

KEY_LABEL = b"hoviyat/console/audit-query/v1"
TEXT_FIELDS = ("tracking_code", "client", "service", "operation", "event_type", "outcome")
MAX_TEXT = 200
# Persian and Arabic-Indic digits, as phones and Persian keyboards type them.
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


class BadSearch(ValueError):
    """The form has mistakes: field name → message key."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors = errors


class BadToken(ValueError):
    """A ``q`` or ``after`` value this server did not make (or made with another key)."""


@dataclass(frozen=True)
class Search:
    tracking_code: str | None = None
    client: str | None = None
    service: str | None = None
    operation: str | None = None
    event_type: str | None = None
    outcome: str | None = None
    since: str | None = None  # YYYY-MM-DD, first day (UTC) included
    until: str | None = None  # YYYY-MM-DD, last day (UTC) included
    subject_hashes: tuple[str, ...] = ()

    def entry_filter(self) -> EntryFilter:
        return EntryFilter(
            since=_day_start(self.since) if self.since else None,
            until=_day_start(self.until) + timedelta(days=1) if self.until else None,
            event_type=self.event_type,
            actor_id=self.client,
            service_code=self.service,
            tracking_code=self.tracking_code,
            outcome=self.outcome,
            operation=self.operation,
            subject_hashes=self.subject_hashes,
        )

    def form_values(self) -> dict[str, str]:
        """What the form shows again: every filter but the national code."""
        values = {name: getattr(self, name) or "" for name in (*TEXT_FIELDS, "since", "until")}
        return {name: value for name, value in values.items() if value}


def _day_start(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(0), UTC)


def parse_form(form: Mapping[str, object], pepper: bytes) -> tuple[Search, list[str]]:
    """The search a posted form asks for, and the subject hashes it named (to audit the search).

    Raises :class:`BadSearch` naming every field in error.
    """
    errors: dict[str, str] = {}
    values: dict[str, str | None] = {}
    for name in TEXT_FIELDS:
        text = _text(form.get(name)).translate(_DIGITS)
        if len(text) > MAX_TEXT or not text.isprintable():
            errors[name] = "console.audit.err.text"
        values[name] = text or None
    days: dict[str, date | None] = {}
    for name in ("since", "until"):
        text = _text(form.get(name)).translate(_DIGITS)
        try:
            days[name] = date.fromisoformat(text) if text else None
        except ValueError:
            errors[name] = "console.audit.err.date"
            days[name] = None
    first, last = days["since"], days["until"]
    if first and last and first > last:
        errors["until"] = "console.audit.err.range"
    hashes: list[str] = []
    code = _text(form.get("national_code"))
    if code:
        try:
            hashes.append(subject_hash(pepper, validate_national_code(code)))
        except IdentifierError:
            errors["national_code"] = "console.audit.err.national_code"
    if errors:
        raise BadSearch(errors)
    search = Search(
        **values,
        since=first.isoformat() if first else None,
        until=last.isoformat() if last else None,
        subject_hashes=tuple(hashes),
    )
    return search, hashes


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def seal(search: Search, key: bytes) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, orjson.dumps(asdict(search)), KEY_LABEL)
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def unseal(token: str, key: bytes) -> Search:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], KEY_LABEL)
        fields = orjson.loads(plain)
        fields["subject_hashes"] = tuple(fields["subject_hashes"])
        return Search(**fields)
    except (binascii.Error, ValueError, InvalidTag, KeyError, TypeError) as exc:
        raise BadToken("this search link was not made by this server") from exc


def encode_position(position: Position) -> str:
    """The next page's cursor: the last entry's time (µs since the epoch) and id."""
    micros = int(position.created_at.timestamp()) * 1_000_000 + position.created_at.microsecond
    return f"{micros}.{position.id}"


def decode_position(text: str) -> Position:
    micros, dot, entry_id = text.partition(".")
    if not dot or not (micros.isascii() and micros.isdigit() and entry_id.isascii()):
        raise BadToken("'after' is not a cursor of this search")
    if not entry_id.isdigit() or len(micros) > 18 or len(entry_id) > 18:
        raise BadToken("'after' is not a cursor of this search")
    try:
        moment = datetime.fromtimestamp(int(micros) // 1_000_000, UTC).replace(
            microsecond=int(micros) % 1_000_000
        )
    except (OverflowError, OSError, ValueError) as exc:
        raise BadToken("'after' is not a cursor of this search") from exc
    return Position(moment, int(entry_id))
