"""Canonical entry bytes, version 1: what a leaf of the audit Merkle tree hashes.

An entry is serialised as a JSON object under the JSON Canonicalization Scheme
(RFC 8785, "JCS"): UTF-8, no insignificant whitespace, object members sorted
by the UTF-16 code units of their names (§3.2.3), strings escaped as ECMAScript
``JSON.stringify`` does (§3.2.2.2), numbers in ECMAScript's shortest form
(§3.2.2.3). An auditor's tool in any language with a JCS library re-creates
the bytes exactly from the fields of an exported entry.

Version 1 members (every one present; absent values are ``null``)::

    v, leaf_index, created_at, tracking_code, event_type, actor_type, actor_id,
    service_code, legal_basis, operation, subject_hash, outcome, detail

``created_at`` is UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. ``leaf_index`` binds an
entry to its position, so a row moved elsewhere no longer hashes to its leaf.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

ENTRY_VERSION = 1
ENTRY_FIELDS = (
    "v",
    "leaf_index",
    "created_at",
    "tracking_code",
    "event_type",
    "actor_type",
    "actor_id",
    "service_code",
    "legal_basis",
    "operation",
    "subject_hash",
    "outcome",
    "detail",
)


class CanonicalizationError(ValueError):
    """A value JCS cannot represent (NaN, infinities, non-string keys, other types)."""


def format_time(moment: datetime) -> str:
    # Stored timestamps come back aware (idp.storage.types.UtcDateTime); a naive
    # one has no defined instant, and guessing would change the entry's bytes.
    if moment.utcoffset() is None:
        raise CanonicalizationError(f"created_at {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_document(
    *,
    leaf_index: int,
    created_at: datetime,
    tracking_code: str,
    event_type: str,
    actor_type: str,
    actor_id: str | None,
    service_code: str | None,
    legal_basis: str | None,
    operation: str | None,
    subject_hash: str | None,
    outcome: str,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    """The version 1 entry as a JSON object (the form exports carry)."""
    detail = detail or {}
    if _needs_exact(detail):
        try:
            canonicalize(detail)
        except CanonicalizationError:
            # A detail JSON cannot carry (NaN, say) must not stop the log: the
            # entry records its text instead, the same way every time.
            detail = {"unrepresentable_detail": repr(detail)}
    return {
        "v": ENTRY_VERSION,
        "leaf_index": leaf_index,
        "created_at": format_time(created_at),
        "tracking_code": tracking_code,
        "event_type": event_type,
        "actor_type": actor_type,
        "actor_id": actor_id,
        "service_code": service_code,
        "legal_basis": legal_basis,
        "operation": operation,
        "subject_hash": subject_hash,
        "outcome": outcome,
        "detail": detail,
    }


def row_document(row: Any, leaf_index: int) -> dict[str, Any]:
    """:func:`entry_document` of a stored entry (an ``AuditEntry`` or a result row).

    The one place that reads the version 1 fields off a row: the sequencer
    hashes this, an export prints it, so the two cannot drift apart. Written
    out field by field: a name-list lookup costs the sequencer about 5%.
    """
    return entry_document(
        leaf_index=leaf_index,
        created_at=row.created_at,
        tracking_code=row.tracking_code,
        event_type=row.event_type,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        service_code=row.service_code,
        legal_basis=row.legal_basis,
        operation=row.operation,
        subject_hash=row.subject_hash,
        outcome=row.outcome,
        detail=row.detail,
    )


def entry_bytes(document: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes of an entry document, checking it is a version 1 entry."""
    if document.get("v") != ENTRY_VERSION:
        raise CanonicalizationError(f"unknown entry version {document.get('v')!r}")
    if document.keys() != _FIELD_SET:
        raise CanonicalizationError("entry members differ from version 1's")
    # Every member but ``detail`` is a string, null or a small integer, which
    # json.dumps already prints as RFC 8785 does: only ``detail`` needs the
    # full check. This runs once per leaf, so it is kept short.
    detail = document["detail"]
    if (
        isinstance(detail, dict)
        and not (detail and _needs_exact(detail))
        and type(document["leaf_index"]) is int
        and all(type(document[name]) in _PLAIN for name in _TEXT_FIELDS)
    ):
        try:
            text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CanonicalizationError("string holds a lone surrogate") from exc
    return canonicalize(document)


_FIELD_SET = frozenset(ENTRY_FIELDS)
_TEXT_FIELDS = tuple(f for f in ENTRY_FIELDS if f not in ("v", "leaf_index", "detail"))
_PLAIN = (str, type(None))


def canonicalize(value: Any) -> bytes:
    """RFC 8785 serialisation of a JSON value."""
    if _needs_exact(value):
        return "".join(_serialize(value)).encode("utf-8")
    # json.dumps matches RFC 8785 byte for byte for everything else: integers
    # print alike, it escapes exactly what ECMAScript escapes when
    # ensure_ascii is off, and code point order equals UTF-16 order for names
    # inside the Basic Multilingual Plane below the surrogates.
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return text.encode("utf-8")
    except TypeError as exc:
        raise CanonicalizationError(str(exc)) from exc
    except UnicodeEncodeError as exc:
        raise CanonicalizationError("string holds a lone surrogate (RFC 8785 §3.2.2.2)") from exc


def _needs_exact(value: Any) -> bool:
    """Values json.dumps would print differently: floats, unsafe integers, odd names."""
    if value is None or isinstance(value, bool | str):
        return False
    if isinstance(value, int):
        return abs(value) > 2**53
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(
            not isinstance(key, str) or (key and max(key) >= "\ud800") or _needs_exact(item)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return any(_needs_exact(item) for item in value)
    return True  # not a JSON value: the exact path names it


def _serialize(value: Any) -> list[str]:
    if value is None:
        return ["null"]
    if value is True:
        return ["true"]
    if value is False:
        return ["false"]
    if isinstance(value, str):
        return [_string(value)]
    if isinstance(value, int | float):
        return [_number(value)]
    if isinstance(value, list | tuple):
        parts = ["["]
        for i, item in enumerate(value):
            if i:
                parts.append(",")
            parts.extend(_serialize(item))
        parts.append("]")
        return parts
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalizationError(f"object member name {key!r} is not a string")
        parts = ["{"]
        for i, key in enumerate(sorted(value, key=lambda k: k.encode("utf-16-be"))):
            if i:
                parts.append(",")
            parts.append(_string(key))
            parts.append(":")
            parts.extend(_serialize(value[key]))
        parts.append("}")
        return parts
    raise CanonicalizationError(f"{type(value).__name__} is not a JSON value")


def _string(text: str) -> str:
    for char in text:
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise CanonicalizationError("string holds a lone surrogate (RFC 8785 §3.2.2.2)")
    return json.dumps(text, ensure_ascii=False)


def _number(number: float) -> str:
    """ECMAScript Number.prototype.toString (RFC 8785 §3.2.2.3)."""
    number = float(number)
    if math.isnan(number) or math.isinf(number):
        raise CanonicalizationError("NaN and infinities are not JSON numbers")
    if number == 0:
        return "0"
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    text = repr(number)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    exp = int(exponent)
    if -7 < exp < 21:
        # ECMAScript writes these magnitudes without an exponent.
        digits = mantissa.replace(".", "").lstrip("-")
        sign = "-" if number < 0 else ""
        point = mantissa.lstrip("-").find(".")
        point = len(mantissa.lstrip("-")) if point < 0 else point
        position = point + exp
        if position <= 0:
            return f"{sign}0.{'0' * -position}{digits}"
        return f"{sign}{digits[:position]}.{digits[position:]}".rstrip(".")
    return f"{mantissa}e{'+' if exp > 0 else '-'}{abs(exp)}"


def loads(line: bytes | str) -> Any:
    """Parse JSON the way the verifier must: no NaN, no duplicate member names."""

    def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            raise CanonicalizationError("duplicate object member name")
        return result

    def _constant(name: str) -> Any:
        raise CanonicalizationError(f"{name} is not a JSON number")

    return json.loads(line, object_pairs_hook=_pairs, parse_constant=_constant)
