"""Legacy files with the defects real ones have, made from the synthetic registry.

For demonstrations, tests and the benchmark: each row is a registry person,
written as an old agency table would hold them, with a deterministic share of
defects (see :data:`DEFECTS`). The persons are read once and then reused in
turn, so a file may have more rows than the registry has persons.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from idp.reconciliation.legacy_csv import INPUT_FIELDS
from verifiers.dates import to_jalali
from verifiers.identifiers import national_code_check_digit
from verifiers.registry import Person
from verifiers.registry.synthetic import SyntheticRegistry

# Share of rows (per thousand) given each defect; the rest are clean.
DEFECTS: dict[str, int] = {
    "dropped_zeros": 60,  # the national code stored as a number
    "missing_fields": 80,
    "wrong_birth_date": 60,
    "wrong_first_name": 40,
    "bad_checksum": 30,
    "malformed_date": 30,
    "unknown_person": 20,
    "column_count": 10,
    "arabic_letters_persian_digits": 100,  # not a defect: must still match
}


def _unknown_code(rng: random.Random) -> str:
    body = f"{rng.randrange(10**9):09d}"
    return body + str(national_code_check_digit(body))


def legacy_values(person: Person, rng: random.Random) -> tuple[list[str], str]:
    """One legacy row for ``person`` and the name of the defect given to it ("clean" if none)."""
    values = [
        person.national_code,
        person.first_name,
        person.last_name,
        person.father_name,
        to_jalali(person.birth_date),
        person.postal_code,
    ]
    draw = rng.randrange(1000)
    defect = "clean"
    for name, share in DEFECTS.items():
        if draw < share:
            defect = name
            break
        draw -= share
    if defect == "clean":
        return values, defect
    if defect == "dropped_zeros":
        values[0] = values[0].lstrip("0") or "0"
    elif defect == "missing_fields":
        for index in rng.sample(range(1, 6), rng.randint(1, 3)):
            values[index] = ""
    elif defect == "wrong_birth_date":
        values[4] = to_jalali(person.birth_date + timedelta(days=rng.randint(1, 400)))
    elif defect == "wrong_first_name":
        values[1] = values[1] + "ی"
    elif defect == "bad_checksum":
        last = int(values[0][9])
        values[0] = values[0][:9] + str((last + 1) % 10)
    elif defect == "malformed_date":
        values[4] = values[4].replace("/", ".") + "x"
    elif defect == "unknown_person":
        values[0] = _unknown_code(rng)
    elif defect == "column_count":
        values = values[:4]
    else:
        values[1] = values[1].replace("ی", "ي").replace("ک", "ك")
        values[5] = values[5].translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    return values, defect


def sample_rows(
    registry_path: Path, rows: int, *, persons: int = 100_000, seed: int = 7
) -> Iterator[tuple[list[str], str]]:
    registry = SyntheticRegistry(registry_path)
    try:
        people = [person for person, _mobiles in registry.iter_persons(min(persons, rows))]
    finally:
        registry.close()
    if not people:
        raise ValueError(f"the registry {registry_path} holds no persons")
    rng = random.Random(seed)
    for index in range(rows):
        yield legacy_values(people[index % len(people)], rng)


def write_sample(
    registry_path: Path, out: Path, rows: int, *, persons: int = 100_000, seed: int = 7
) -> dict[str, int]:
    """Write a legacy CSV of ``rows`` rows to ``out``; returns how many rows got each defect."""
    counts: dict[str, int] = {}
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(INPUT_FIELDS)
        for values, defect in sample_rows(registry_path, rows, persons=persons, seed=seed):
            writer.writerow(values)
            counts[defect] = counts.get(defect, 0) + 1
    return counts
