"""Checking an attestation offline, trusting only the root: the report a receiver reads.

Either form is accepted: the JWT (``hoviyat-attestation+jwt``) or the SD-JWT
(``hoviyat-attestation+sd-jwt``, RFC 9901, with or without Key Binding).
Checks run in order (format, chain, signature, time claims, disclosures, key
binding, then the required claims and audience, status); the first failure
stops the run. The report marks a stage passed only when it ran to its end,
names the one that failed, and every other stage not reached or not asked for. Status is checked
only when asked (it needs the network, or the issuer's own database).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from cryptography import x509
from joserfc.jwk import ECKey

from idp.attestations import rfc9901, status_list
from idp.attestations.errors import AttestationInvalid
from idp.attestations.issuer import TYP_JWT, TYP_SD_JWT
from idp.attestations.x5c import ChainVerifier
from idp.login.i18n import EN, FA, MESSAGES, translate
from verifiers.dates import to_jalali

Lang = Literal["fa", "en"]


def say(key: str, lang: Lang, **values: object) -> str:
    """The report's words come from the one translation catalogue (idp.login.i18n)."""
    return translate(key, EN if lang == "en" else FA, **values)


def word(name: str, lang: Lang) -> str:
    """A word of the report: a verdict, an outcome or a summary label."""
    return say("verify.word." + name, lang)


STAGES = ("format", "chain", "signature", "validity", "disclosures", "key_binding", "status")
_STAGE_OF = {
    "format": "format",
    "typ": "format",
    "chain_missing": "chain",
    "chain_malformed": "chain",
    "chain_untrusted": "chain",
    "certificate_expired": "chain",
    "leaf_usage": "chain",
    "leaf_key": "chain",
    "alg_not_allowed": "signature",
    "issuer_signature": "signature",
    "expired": "validity",
    "not_yet_valid": "validity",
    "time_claim_malformed": "validity",
    "claims_missing": "validity",
    "audience": "validity",
    "sd_alg_unsupported": "disclosures",
    "disclosure_malformed": "disclosures",
    "disclosure_duplicate": "disclosures",
    "disclosure_unreferenced": "disclosures",
    "digest_duplicate": "disclosures",
    "claim_name_reserved": "disclosures",
    "claim_name_duplicate": "disclosures",
}
# What a failed status check means for ``Report.status`` ("not_checked": never ran).
_STATUS_OF = {
    "revoked": "revoked",
    "suspended": "suspended",
    "status_unknown": "unknown",
    "status_missing": "unknown",
}


@dataclass(frozen=True)
class Check:
    stage: str
    outcome: Literal["passed", "failed", "skipped", "not_reached"]
    detail: str = ""


@dataclass
class Report:
    valid: bool
    format: str
    checks: list[Check]
    failed_check: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    signer: str | None = None
    status: str = "not_checked"
    key_bound: bool = False

    @property
    def facts(self) -> list[tuple[str, Any]]:
        """(name, value) of every disclosed fact, across all ``verified_claims`` elements."""
        elements = self.claims.get("verified_claims") or []
        if isinstance(elements, dict):
            elements = [elements]
        found: list[tuple[str, Any]] = []
        for element in elements:
            if isinstance(element, dict):
                found.extend((element.get("claims") or {}).items())
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "format": self.format,
            "failed_check": self.failed_check,
            "checks": [
                {"stage": c.stage, "outcome": c.outcome, "detail": c.detail} for c in self.checks
            ],
            "status": self.status,
            "key_bound": self.key_bound,
            "issuer": self.claims.get("iss"),
            "signer": self.signer,
            "attestation_id": self.claims.get("jti"),
            "tracking_code": self.claims.get("txn"),
            "purpose": self.claims.get("purpose"),
            "recipient": self.claims.get("aud"),
            "issued_at": _iso(self.claims.get("iat")),
            "expires_at": _iso(self.claims.get("exp")),
            "facts": dict(self.facts),
        }

    def render(self, lang: Lang = "fa") -> str:
        """A plain-text report for a terminal, in Persian or English."""
        lines = [
            f"{say('verify.word.' + ('valid' if self.valid else 'invalid'), lang)} ({self.format})"
        ]
        for check in self.checks:
            mark = "✔" if check.outcome == "passed" else "✘" if check.outcome == "failed" else "·"
            stage, outcome = (
                say("verify.stage." + check.stage, lang),
                say("verify.word." + check.outcome, lang),
            )
            line = f"  {mark} {stage}: {outcome}"
            if check.detail:
                line += f" — {check.detail}"
            lines.append(line)
        if self.claims:
            summary = self.as_dict()
            for key in ("issuer", "signer", "issued_at", "expires_at", "purpose", "recipient"):
                if summary.get(key):
                    lines.append(f"{word(key, lang)}: {display(key, summary[key], lang)}")
            if summary.get("tracking_code"):
                lines.append(f"{word('tracking_code', lang)}: {summary['tracking_code']}")
            if self.facts:
                lines.append(f"{word('facts', lang)}:")
                for name, value in self.facts:
                    lines.append(f"  {fact_title(name, lang)}: {format_value(value, lang)}")
        return "\n".join(lines)


def display(key: str, value: Any, lang: Lang) -> str:
    """A summary value for people: Persian readers get times in the Jalali calendar too."""
    if key in ("issued_at", "expires_at") and lang == "fa" and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        return f"{to_jalali(moment.date())} {moment:%H:%M} UTC ({moment.date().isoformat()})"
    return str(value)


def fact_title(name: str, lang: Lang) -> str:
    if "verify.fact." + name in MESSAGES:
        return say("verify.fact." + name, lang)
    if name.startswith("age_over_"):
        return say("verify.fact.age_over", lang, years=name.removeprefix("age_over_"))
    return name


def format_value(value: Any, lang: Lang) -> str:
    if isinstance(value, bool):
        return word("yes" if value else "no", lang)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v, lang)}" for k, v in value.items())
    return str(value)


def _iso(timestamp: Any) -> str | None:
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


StatusFetcher = Callable[[str], str]


def http_status_fetcher(timeout: float = 5.0) -> StatusFetcher:
    def fetch(uri: str) -> str:
        try:
            response = httpx.get(uri, timeout=timeout, headers={"Accept": status_list.MEDIA_TYPE})
        except httpx.HTTPError as exc:
            raise AttestationInvalid("status_unavailable", f"{uri}: {exc}") from exc
        if response.status_code != 200:
            raise AttestationInvalid(
                "status_unavailable", f"{uri} answered HTTP {response.status_code}"
            )
        return response.text

    return fetch


class AttestationVerifier:
    """Offline checks against ``roots``; status through ``status_fetcher`` when asked."""

    def __init__(
        self,
        roots: Sequence[x509.Certificate],
        *,
        status_fetcher: StatusFetcher | None = None,
        leeway_seconds: int = 60,
    ) -> None:
        self.chains = ChainVerifier(roots)
        self.status_fetcher = status_fetcher
        self.leeway_seconds = leeway_seconds

    def verify(
        self,
        text: str,
        *,
        now: datetime | None = None,
        key_binding: rfc9901.KeyBindingPolicy = rfc9901.KeyBindingPolicy(),
        check_status: bool = False,
        audience: str | None = None,
        any_audience: bool = False,
    ) -> Report:
        """The report of every check that ran, in order, up to the first failure.

        ``audience`` names the receiver. An attestation carrying ``aud`` is refused
        unless it names the receiver (RFC 7519 §4.1.3); ``any_audience`` waives that
        only for the holder checking their own attestation, who is no receiver.
        """
        at = now or datetime.now(UTC)
        text = text.strip()
        form = "sd-jwt" if rfc9901.SEPARATOR in text else "jwt"
        report = Report(valid=False, format=form, checks=[])
        # Only a stage that ran to its end is reported passed.
        passed: list[str] = []
        kb_expected = key_binding.required
        try:
            if form == "sd-jwt":
                parsed = rfc9901.SdJwt.parse(text)
                kb_expected = kb_expected or parsed.kb_jwt is not None
                jwt = parsed.jwt
            else:
                if text.count(".") != 2 or not text.isascii():
                    raise AttestationInvalid("format", "neither a JWT nor an SD-JWT")
                jwt = text
            header = rfc9901.unverified_header(jwt)
            expected = TYP_SD_JWT if form == "sd-jwt" else TYP_JWT
            if header.get("typ") != expected:
                raise AttestationInvalid("typ", f"typ is {header.get('typ')!r}, not {expected!r}")
            passed.append("format")
            validated = self.chains.validate(header.get("x5c"), at)
            report.signer = validated.leaf.subject.rfc4514_string()
            passed.append("chain")
            if form == "sd-jwt":
                verified = rfc9901.verify(
                    text,
                    lambda _header, _payload: validated.key,
                    now=int(at.timestamp()),
                    key_binding=key_binding,
                    leeway_seconds=self.leeway_seconds,
                    progress=passed.append,
                )
                report.header, report.claims = verified.header, verified.claims
                report.key_bound = verified.key_bound
            else:
                report.header, report.claims = self._verify_jwt(jwt, validated.key, at)
                passed.append("signature")
            _check_required(report.claims, audience, any_audience)
            passed.append("validity")
            if check_status:
                report.status = self._status(report.claims, at)
                passed.append("status")
        except AttestationInvalid as failure:
            report.failed_check = failure.check
            stage = _stage(failure.check)
            if stage in passed:
                # e.g. a payload that is not JSON, found by a later stage: that one failed.
                stage = next(s for s in _order(form, kb_expected) if s not in passed)
            if stage == "status":
                report.status = _STATUS_OF.get(failure.check, "unavailable")
            report.checks = _checks(passed, stage, failure.detail, form, check_status, kb_expected)
            return report
        report.valid = True
        report.checks = _checks(passed, None, "", form, check_status, kb_expected)
        return report

    def _verify_jwt(
        self, jwt: str, key: ECKey, at: datetime
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        header = rfc9901.unverified_header(jwt)
        if header.get("alg") not in rfc9901.ISSUER_ALGORITHMS:
            raise AttestationInvalid("alg_not_allowed", f"alg {header.get('alg')!r} not allowed")
        header, claims = rfc9901.verify_jws(jwt, key, rfc9901.ISSUER_ALGORITHMS, "issuer")
        rfc9901.check_time_claims(claims, int(at.timestamp()), self.leeway_seconds, "attestation")
        return header, claims

    def _status(self, claims: dict[str, Any], at: datetime) -> str:
        if self.status_fetcher is None:
            raise AttestationInvalid("status_unavailable", "no way to fetch the status list")

        def resolve(header: dict[str, Any]) -> ECKey:
            return self.chains.leaf_key(header.get("x5c"), at)

        try:
            value = status_list.check_status(
                claims, self.status_fetcher, resolve, now=int(at.timestamp())
            )
        except AttestationInvalid as failure:
            if failure.check.startswith("status"):
                raise
            # The list's own chain or signature failed: report it as a status failure.
            raise AttestationInvalid(
                "status_list_untrusted", f"the status list did not verify: {failure.detail}"
            ) from failure
        if value == status_list.INVALID:
            raise AttestationInvalid("revoked", "the issuer has revoked this attestation")
        if value == status_list.SUSPENDED:
            raise AttestationInvalid("suspended", "the issuer has suspended this attestation")
        if value != status_list.VALID:
            raise AttestationInvalid("status_unknown", f"status list value {value}")
        return "valid"


def _check_required(claims: dict[str, Any], audience: str | None, any_audience: bool) -> None:
    missing = [
        name for name in ("iss", "iat", "exp", "jti", "verified_claims") if name not in claims
    ]
    if missing:
        raise AttestationInvalid("claims_missing", f"the attestation lacks {', '.join(missing)}")
    if "aud" not in claims or any_audience:
        return
    # RFC 7519 §4.1.3: a receiver that does not identify itself with a value in
    # ``aud`` must reject the token, and one that names no audience identifies with none.
    aud = claims["aud"]
    recipients = aud if isinstance(aud, list) else [aud]
    if audience is None:
        raise AttestationInvalid(
            "audience", f"issued for {aud!r}: the receiver must name itself as the audience"
        )
    if audience not in recipients:
        raise AttestationInvalid("audience", f"issued for {aud!r}, not {audience!r}")


def _order(form: str, kb_expected: bool) -> list[str]:
    """The stages in the order :meth:`AttestationVerifier.verify` completes them."""
    if form == "jwt":
        return ["format", "chain", "signature", "validity", "status"]
    return (
        ["format", "chain", "signature", "disclosures"]
        + (["key_binding"] if kb_expected else [])
        + ["validity", "status"]
    )


def _stage(check: str) -> str:
    if check in _STAGE_OF:
        return _STAGE_OF[check]
    if check.startswith("kb_"):
        return "key_binding"
    return "status"


def _checks(
    passed: Sequence[str],
    failed_stage: str | None,
    detail: str,
    form: str,
    check_status: bool,
    kb_expected: bool,
) -> list[Check]:
    """Every stage as it went: passed only if it ran to its end, never by position."""
    checks: list[Check] = []
    for stage in STAGES:
        if form == "jwt" and stage in ("disclosures", "key_binding"):
            continue
        if stage in passed:
            checks.append(Check(stage, "passed"))
        elif stage == failed_stage:
            checks.append(Check(stage, "failed", detail))
        elif (stage == "status" and not check_status) or (
            stage == "key_binding" and not kb_expected
        ):
            checks.append(Check(stage, "skipped"))
        else:
            checks.append(Check(stage, "not_reached"))
    return checks
