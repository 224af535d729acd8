"""Dates as citizens type them: Jalali or Gregorian, any digit script (design notes, "Dates").

Accepted forms, after folding Persian/Arabic-Indic digits and removing
zero-width characters and surrounding spaces:

- ``YYYY/MM/DD`` and ``YYYY-MM-DD`` (month and day may have one digit).

The year decides the calendar, not the separator: a year below 1700 is a
Jalali (solar hijri) year (1370/05/12, ۱۳۷۰-۰۵-۱۲), from 1700 on it is
Gregorian (1991-08-03, 1991/08/03). Jalali years in use are 12xx–14xx and
Gregorian ones 19xx–20xx, so the two never overlap. Dates are stored as ISO
``datetime.date``.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

import jdatetime

from verifiers.digits import strip_invisible, translate_digits
from verifiers.identifiers import IdentifierError

JALALI_YEAR_LIMIT = 1700

_DATE = re.compile(r"([0-9]{4})([/\-])([0-9]{1,2})\2([0-9]{1,2})")


def parse_date(value: str, *, field: str = "birth_date") -> date:
    """Parse a Jalali or Gregorian date or raise :class:`IdentifierError`.

    Rules: ``format`` (not a date shape) and ``invalid-date`` (no such day).
    """
    if not isinstance(value, str):
        raise IdentifierError(field, "format", f"{field} must be a date string like 1370/05/12")
    text = strip_invisible(translate_digits(value)).strip()
    match = _DATE.fullmatch(text)
    if match is None:
        raise IdentifierError(
            field,
            "format",
            f"{field} must look like 1370/05/12 (Jalali) or 1991-08-03 (ISO)",
        )
    year, month, day = int(match[1]), int(match[3]), int(match[4])
    if year < JALALI_YEAR_LIMIT:
        try:
            return _jalali_to_gregorian(year, month, day)
        except ValueError:
            raise IdentifierError(
                field,
                "invalid-date",
                f"{field} {year:04d}/{month:02d}/{day:02d} is not a day of the Jalali calendar",
            ) from None
    try:
        return date(year, month, day)
    except ValueError:
        raise IdentifierError(
            field,
            "invalid-date",
            f"{field} {year:04d}-{month:02d}-{day:02d} is not a day of the Gregorian calendar",
        ) from None


# Birth dates span a century or so: a few tens of thousands of days, each
# converted once per process instead of on every request that names it.
@lru_cache(maxsize=1 << 16)
def _jalali_to_gregorian(year: int, month: int, day: int) -> date:
    gregorian: date = jdatetime.date(year, month, day).togregorian()
    return gregorian


@lru_cache(maxsize=1 << 16)
def to_jalali(d: date) -> str:
    """The Jalali form ``YYYY/MM/DD`` with ASCII digits, e.g. ``'1370/05/12'``."""
    # From the fields, not strftime: jdatetime's strftime consults the locale.
    jalali = jdatetime.date.fromgregorian(date=d)
    return f"{jalali.year:04d}/{jalali.month:02d}/{jalali.day:02d}"
