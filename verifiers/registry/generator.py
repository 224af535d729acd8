"""Deterministic synthetic people and legal entities: record ``i`` is a function of ``(seed, i)``.

Nothing here touches a file. :mod:`verifiers.registry.synthetic` writes these
records into SQLite; tests and benchmarks call the same functions to know, for
example, the national code of person 123 without reading the registry.

Identifiers are unique by construction, not by retry: person ``i``'s national
code body is an affine permutation of ``i`` over all 9-digit bodies that are
not one repeated digit, entity ``j``'s national identifier body a permutation
over ``10`` / ``14`` prefixed bodies, and mobile numbers a permutation of
``(i, slot)`` over ten operator prefixes × 10⁷ numbers. The permutation
constants come from the seed. A person's other attributes are digits of one
keyed BLAKE2b draw on ``(seed, i)`` (a million of them seed in well under a
minute); an entity's come from a PRNG seeded with ``(seed, j)``.

Formats chosen where public sources are thin:

- national card serial (سریال کارت ملی هوشمند): 10 characters, a digit, an
  upper-case Latin letter, eight digits, e.g. ``2A12345678``, as printed on
  the back of the smart national card;
- postal code: 10 digits that also satisfy the strict (warning-only) rules of
  :func:`verifiers.identifiers.validate_postal_code`;
- birth dates uniform over 1930-01-01..2008-12-31; about 2% deceased, more
  among the older;
- representations: the first representative (مدیرعامل) is always in force on
  :data:`REFERENCE_DATE` and for years after; others are in force or, one in
  four, expired before it.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import struct
from datetime import date, timedelta

import jdatetime

from verifiers.identifiers import national_id_check_digit
from verifiers.registry.base import EntityStatus, Gender, LegalEntity, Person, Representative
from verifiers.registry.names_fa import (
    ENTITY_KINDS,
    ENTITY_WORDS,
    FAMILY_NAMES,
    FEMALE_NAMES,
    MALE_NAMES,
    MOBILE_PREFIXES,
    REGISTERING_BODIES,
    REPRESENTATIVE_ROLES,
    SIGNING_AUTHORITIES,
)

# Data must not depend on the day it is generated: "current" and "expired"
# representations are placed relative to this fixed date.
REFERENCE_DATE = date(2025, 3, 21)  # 1404/01/01

BIRTH_FIRST = date(1930, 1, 1).toordinal()
BIRTH_SPAN = date(2008, 12, 31).toordinal() - BIRTH_FIRST + 1
REGISTRATION_FIRST = jdatetime.date(1340, 1, 1).togregorian().toordinal()
REGISTRATION_SPAN = jdatetime.date(1403, 12, 29).togregorian().toordinal() - REGISTRATION_FIRST + 1

_REPEATED_BODIES = tuple(d * 111_111_111 for d in range(10))
_NATIONAL_CODE_SPACE = 10**9 - len(_REPEATED_BODIES)
_ENTITY_PREFIXES = ("10", "14")
_ENTITY_SPACE = len(_ENTITY_PREFIXES) * 10**8
_MOBILE_SPACE = len(MOBILE_PREFIXES) * 10**7
MAX_PERSONS = _MOBILE_SPACE // 2
MAX_ENTITIES = _ENTITY_SPACE

_SERIAL_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_POSTAL_HEAD = "13456789"
_POSTAL_FIFTH = "1346789"
_POSTAL_TAIL = "013456789"
# First four digits of a postal code: no 0 or 2, not one digit four times.
_POSTAL_HEADS = tuple(
    "".join(p) for p in itertools.product(_POSTAL_HEAD, repeat=4) if len(set(p)) > 1
)
# Deceased per 10,000 by birth cohort (before 1950, before 1970, after): ~2% overall.
_DECEASED_PER_10K = (600, 200, 50)
_ENTROPY_KEY = struct.Struct(">QBQ")


def _weighted_sums(weights: tuple[int, int, int]) -> tuple[int, ...]:
    return tuple(
        sum(int(d) * w for d, w in zip(f"{n:03d}", weights, strict=True)) for n in range(1000)
    )


_CHECKSUM_HIGH = _weighted_sums((10, 9, 8))
_CHECKSUM_MIDDLE = _weighted_sums((7, 6, 5))
_CHECKSUM_LOW = _weighted_sums((4, 3, 2))

_STATUSES: tuple[EntityStatus, ...] = ("active", "dissolved", "suspended", "in_liquidation")
_STATUS_WEIGHTS = (82, 7, 5, 6)

_STREAM_PERSON, _STREAM_ENTITY = 0, 1

PersonFields = tuple[str, str, str, str, date, Gender, bool, str, str, tuple[str, ...]]


def _permutation(seed: int, name: str, space: int) -> tuple[int, int]:
    """Constants ``(a, b)`` of the bijection ``k -> (a*k + b) mod space`` for this seed."""
    rng = random.Random(f"hoviyat/{name}/{seed}")
    while True:
        a = rng.randrange(space // 3, space)
        if math.gcd(a, space) == 1:
            return a, rng.randrange(space)


_PERMUTATIONS: dict[tuple[int, str], tuple[int, int]] = {}


def _permute(seed: int, name: str, space: int, k: int) -> int:
    key = (seed, name)
    constants = _PERMUTATIONS.get(key)
    if constants is None:
        constants = _PERMUTATIONS[key] = _permutation(seed, name, space)
    a, b = constants
    return (a * k + b) % space


def _rng(seed: int, stream: int, index: int) -> random.Random:
    return random.Random((seed << 34) | (stream << 32) | index)


def national_code(seed: int, i: int) -> str:
    """Person ``i``'s national code: valid checksum, never one repeated digit, unique per seed."""
    if not 0 <= i < _NATIONAL_CODE_SPACE:
        raise ValueError(f"person index {i} out of range")
    body = _permute(seed, "national-code", _NATIONAL_CODE_SPACE, i)
    # Skip the ten repeated-digit bodies so the map stays a bijection onto valid codes.
    for repeated in _REPEATED_BODIES:
        if body >= repeated:
            body += 1
    # The checksum Σ d_i × (11 − i) in three table lookups, one per 3-digit group
    # (seeding computes a million of these); the same rule as
    # verifiers.identifiers.national_code_check_digit, which the tests compare.
    high, rest = divmod(body, 1_000_000)
    middle, low = divmod(rest, 1000)
    r = (_CHECKSUM_HIGH[high] + _CHECKSUM_MIDDLE[middle] + _CHECKSUM_LOW[low]) % 11
    return f"{body:09d}{r if r < 2 else 11 - r}"


def national_id(seed: int, j: int) -> str:
    """Entity ``j``'s 11-digit national identifier with a valid check digit, unique per seed."""
    if not 0 <= j < _ENTITY_SPACE:
        raise ValueError(f"entity index {j} out of range")
    k = _permute(seed, "national-id", _ENTITY_SPACE, j)
    body = _ENTITY_PREFIXES[k // 10**8] + f"{k % 10**8:08d}"
    return body + str(national_id_check_digit(body))


def _mobile(seed: int, i: int, slot: int) -> str:
    k = _permute(seed, "mobile", _MOBILE_SPACE, 2 * i + slot)
    return MOBILE_PREFIXES[k // 10**7] + f"{k % 10**7:07d}"


def _entropy(seed: int, stream: int, index: int) -> int:
    """256 uniform bits for record ``index``: a keyed hash, far cheaper than seeding a PRNG."""
    key = _ENTROPY_KEY.pack(seed & 0xFFFFFFFFFFFFFFFF, stream, index)
    return int.from_bytes(hashlib.blake2b(key, digest_size=32, person=b"hoviyat-reg").digest())


def _postal_tail(k: int) -> str:
    # k in 1..9**5-1 written in base 9 over the digits without 2 (k = 0 would be 00000).
    digits = []
    for _ in range(5):
        k, d = divmod(k, 9)
        digits.append(_POSTAL_TAIL[d])
    return "".join(digits)


def person_fields(seed: int, i: int) -> PersonFields:
    """Person ``i`` as a plain tuple: the :class:`Person` fields in order, then the mobiles.

    Seeding writes these straight to SQLite without building a :class:`Person`.
    """
    # Each attribute takes its share of one 256-bit draw (mixed-radix digits);
    # the ~120 bits used leave the bias of the last digits negligible.
    x = _entropy(seed, _STREAM_PERSON, i)
    x, male = divmod(x, 2)
    given_names = MALE_NAMES if male else FEMALE_NAMES
    x, k = divmod(x, len(given_names))
    first_name = given_names[k]
    x, k = divmod(x, len(FAMILY_NAMES))
    last_name = FAMILY_NAMES[k]
    x, k = divmod(x, len(MALE_NAMES))
    father_name = MALE_NAMES[k]
    x, k = divmod(x, BIRTH_SPAN)
    birth_date = date.fromordinal(BIRTH_FIRST + k)
    x, k = divmod(x, 10_000)
    alive = (
        k >= _DECEASED_PER_10K[0 if birth_date.year < 1950 else 1 if birth_date.year < 1970 else 2]
    )
    x, serial_digit = divmod(x, 10)
    x, letter = divmod(x, len(_SERIAL_LETTERS))
    x, serial_number = divmod(x, 10**8)
    serial = f"{serial_digit}{_SERIAL_LETTERS[letter]}{serial_number:08d}"
    x, head = divmod(x, len(_POSTAL_HEADS))
    x, fifth = divmod(x, len(_POSTAL_FIFTH))
    x, tail = divmod(x, 9**5 - 1)
    postal_code = _POSTAL_HEADS[head] + _POSTAL_FIFTH[fifth] + _postal_tail(tail + 1)
    x, k = divmod(x, 10)
    count = 0 if k < 1 else 1 if k < 7 else 2  # 10% none, 60% one, 30% two
    return (
        national_code(seed, i),
        first_name,
        last_name,
        father_name,
        birth_date,
        "male" if male else "female",
        alive,
        serial,
        postal_code,
        tuple(_mobile(seed, i, slot) for slot in range(count)),
    )


def person_record(seed: int, i: int) -> tuple[Person, tuple[str, ...]]:
    """Person ``i`` and their mobile numbers (none, one or two)."""
    fields = person_fields(seed, i)
    return Person(*fields[:9]), fields[9]


def person(seed: int, i: int) -> Person:
    """Person ``i`` of the registry generated from ``seed``."""
    return person_record(seed, i)[0]


def _representative_index(rng: random.Random, seed: int, persons: int) -> int:
    # Prefer living adults; a few draws are enough, and tiny registries take what they get.
    index = rng.randrange(persons)
    for _ in range(8):
        candidate = person(seed, index)
        if candidate.alive and candidate.birth_date.year <= 2004:
            break
        index = rng.randrange(persons)
    return index


def _representation_dates(
    rng: random.Random, registered: date, current: bool
) -> tuple[date, date | None]:
    board_start = REFERENCE_DATE - timedelta(days=300)
    former_latest = REFERENCE_DATE - timedelta(days=2 * 365 + 30)
    if not current and registered < former_latest:
        start = registered + timedelta(days=rng.randrange((former_latest - registered).days))
        return start, start + timedelta(days=2 * 365)
    # In force on REFERENCE_DATE: started within the board term before it.
    if registered < board_start:
        start = board_start + timedelta(days=rng.randrange(300))
    else:
        start = registered + timedelta(days=rng.randrange((REFERENCE_DATE - registered).days + 1))
    until = None if rng.random() < 0.3 else start + timedelta(days=3 * 365)
    return start, until


def entity(seed: int, j: int, persons: int) -> LegalEntity:
    """Entity ``j``; its representatives are drawn from persons ``0..persons-1``."""
    rng = _rng(seed, _STREAM_ENTITY, j)
    prefix, suffix = rng.choice(ENTITY_KINDS)
    first, second = rng.sample(ENTITY_WORDS, 2)
    name = " ".join(part for part in (prefix, first, second, suffix) if part)
    registered = date.fromordinal(REGISTRATION_FIRST + rng.randrange(REGISTRATION_SPAN))
    status = rng.choices(_STATUSES, weights=_STATUS_WEIGHTS)[0]
    count = rng.choices((1, 2, 3, 4), weights=(25, 30, 25, 20))[0] if persons else 0
    representatives: list[Representative] = []
    for position in range(count):
        index = _representative_index(rng, seed, persons)
        current = position == 0 or rng.random() >= 0.25
        valid_from, valid_until = _representation_dates(rng, registered, current)
        role = REPRESENTATIVE_ROLES[0] if position == 0 else rng.choice(REPRESENTATIVE_ROLES[1:])
        authority = SIGNING_AUTHORITIES[0] if position == 0 else rng.choice(SIGNING_AUTHORITIES)
        representatives.append(
            Representative(
                national_code=national_code(seed, index),
                role=role,
                signing_authority=authority,
                valid_from=valid_from,
                valid_until=valid_until,
            )
        )
    return LegalEntity(
        national_id=national_id(seed, j),
        name=name,
        registration_number=str(rng.randrange(1000, 650_000)),
        registration_date=registered,
        registering_body=rng.choice(REGISTERING_BODIES),
        status=status,
        representatives=tuple(representatives),
    )
