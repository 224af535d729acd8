"""One legacy row against the civil registry, under a service policy.

Per field the answer is ``match``, ``mismatch``, ``missing`` (the legacy row
has no value), ``invalid`` (the value is not a date or postal code at all) or
``not_checked`` (the row could not be looked up). The rules:

- National codes of 8 or 9 digits are left-padded: legacy tables stored them
  as numbers and lost the leading zeros (design notes, "Identifiers").
- A registry field is filled in only where the row is missing it or holds an
  invalid value, only if the policy discloses that field, and only when the
  row's other fields identify the person: at least one matched, none
  mismatched (:func:`verifiers.matching.overall_match`). Otherwise the batch
  would turn national codes into registry extracts.
- An unknown national code gives the same per-field answer as wrong
  attributes (every given field a ``mismatch``) unless the policy may
  distinguish them, as in the verification API.
- A national code named by more rows than the quota allows
  (:mod:`idp.reconciliation.quota`) is looked up for the first rows only; the
  later ones are ``not_checked`` with ``duplicate-subject``.
- ``needs_review`` lists, ``; ``-separated, why a person must look: the row
  is malformed, the national code is invalid, a field mismatched or is
  invalid and could not be filled, nothing could be compared, or the person
  has died (when the policy discloses ``alive``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from idp.reconciliation.legacy_csv import CLAIM_FIELDS, LegacyRow
from idp.reconciliation.quota import SubjectQuota
from policies.service_policy import ServicePolicy
from verifiers.dates import parse_date
from verifiers.digits import normalize_digits
from verifiers.identifiers import IdentifierError, validate_national_code, validate_postal_code
from verifiers.matching import PersonClaims, compare_person, overall_match
from verifiers.registry import CivilRegistry, Person

Outcome = Literal["match", "no_match", "invalid"]


@dataclass(frozen=True, slots=True)
class RowResult:
    number: int
    values: dict[str, str]
    national_code: str | None
    national_code_result: str
    results: dict[str, str]
    filled: dict[str, str] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    identified: bool = False

    @property
    def outcome(self) -> Outcome:
        """For the audit entry: was the row looked up, and did what it claims match?"""
        if self.national_code is None:
            return "invalid"
        return "match" if self.identified else "no_match"

    @property
    def needs_review(self) -> str:
        return "; ".join(self.reasons)


def _not_checked(row: LegacyRow, code_result: str, reason: str, code: str | None) -> RowResult:
    return RowResult(
        number=row.number,
        values=row.values,
        national_code=code,
        national_code_result=code_result,
        results={name: "not_checked" for name in CLAIM_FIELDS},
        reasons=(reason,),
    )


def _claims(values: dict[str, str]) -> tuple[PersonClaims, dict[str, str]]:
    """The row's values as claims, plus ``invalid:<field>:<rule>`` for values that fail format."""
    invalid: dict[str, str] = {}
    birth_date = postal_code = None
    if values.get("birth_date"):
        try:
            birth_date = parse_date(values["birth_date"])
        except IdentifierError as error:
            invalid["birth_date"] = f"invalid:birth_date:{error.rule}"
    if values.get("postal_code"):
        try:
            postal_code = validate_postal_code(values["postal_code"]).value
        except IdentifierError as error:
            invalid["postal_code"] = f"invalid:postal_code:{error.rule}"
    claims = PersonClaims(
        first_name=values.get("first_name") or None,
        last_name=values.get("last_name") or None,
        father_name=values.get("father_name") or None,
        birth_date=birth_date,
        postal_code=postal_code,
    )
    return claims, invalid


def _registry_value(person: Person, name: str) -> str:
    value = getattr(person, name)
    return value.isoformat() if name == "birth_date" else str(value)


def subject_of(row: LegacyRow) -> str | None:
    """The national code a well-formed row names, as :func:`reconcile_row` reads it."""
    raw_code = row.values.get("national_code", "")
    if row.problem or not raw_code:
        return None
    try:
        return validate_national_code(raw_code, pad=True)
    except IdentifierError:
        return None


def reconcile_row(
    row: LegacyRow,
    civil: CivilRegistry,
    policy: ServicePolicy,
    quota: SubjectQuota | None = None,
) -> RowResult:
    """Raises :class:`verifiers.registry.RegistryUnavailable`; never a wrong "no match"."""
    raw_code = row.values.get("national_code", "")
    if row.problem:
        return _not_checked(row, "not_checked", f"malformed-row: {row.problem}", None)
    if not raw_code:
        return _not_checked(row, "missing", "missing:national_code", None)
    try:
        code = validate_national_code(raw_code, pad=True)
    except IdentifierError as error:
        return _not_checked(row, "invalid", f"invalid:national_code:{error.rule}", None)
    if quota is not None and not quota.admit(code):
        reason = f"duplicate-subject: more than {quota.limit} rows name this national code"
        return _not_checked(row, "not_checked", reason, None)
    code_result = "padded" if len(normalize_digits(raw_code)) < len(code) else "valid"
    claims, invalid = _claims(row.values)
    person = civil.person(code)
    compared = compare_person(person, claims)
    identified = person is not None and overall_match(compared)
    results: dict[str, str] = {}
    filled: dict[str, str] = {}
    reasons: list[str] = []
    for name in CLAIM_FIELDS:
        if name in invalid:
            results[name] = "invalid"
        elif compared[name] == "not_checked":
            results[name] = "missing"
        else:
            results[name] = compared[name]
        if (
            results[name] in ("missing", "invalid")
            and identified
            and person is not None
            and policy.discloses_person(name)
        ):
            filled[name] = _registry_value(person, name)
        elif name in invalid:
            reasons.append(invalid[name])
    if person is None and policy.distinguish_not_found:
        reasons.insert(0, "not-in-registry")
    elif "match" not in compared.values() and "mismatch" not in compared.values():
        reasons.insert(0, "nothing-to-compare")
    reasons.extend(f"mismatch:{name}" for name in CLAIM_FIELDS if results[name] == "mismatch")
    if identified and person is not None and not person.alive and policy.discloses_person("alive"):
        reasons.append("deceased")
    return RowResult(
        number=row.number,
        values=row.values,
        national_code=code,
        national_code_result=code_result,
        results=results,
        filled=filled,
        reasons=tuple(reasons),
        identified=identified,
    )
