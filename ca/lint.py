"""Pre-signing lint with pkilint, as Boulder lints before the real signature.

The certificate to lint is the real one signed by a throwaway key
(:func:`ca.signing.throwaway_signature`): every byte but the signature is
what will be issued. Findings at WARNING or worse refuse the issuance, and the
refusal names each rule (pkilint's finding code) and where it fired.
Validators are built once per process; building them costs far more than a lint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pkilint import etsi, finding_filter, loader
from pkilint.cabf import serverauth
from pkilint.etsi import etsi_constants
from pkilint.pkix import certificate, extension, name
from pkilint.validation import ValidationFindingSeverity

THRESHOLD = ValidationFindingSeverity.WARNING


@dataclass(frozen=True)
class LintFinding:
    linter: str
    severity: str
    code: str
    node: str
    message: str | None

    def __str__(self) -> str:
        text = f"{self.linter}: {self.severity} {self.code} at {self.node}"
        return f"{text} ({self.message})" if self.message else text


@cache
def _pkix_validator() -> Any:
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


@cache
def _serverauth_validator(certificate_type: Any) -> Any:
    return certificate.create_pkix_certificate_validator_container(
        serverauth.create_decoding_validators(),
        serverauth.create_validators(certificate_type),
    )


def _etsi_type(name: str) -> Any:
    try:
        return etsi_constants.CertificateType.from_option_str(name)
    except (KeyError, ValueError):
        raise ValueError(f"unknown ETSI certificate type {name!r} (lint_etsi_cert -h)") from None


@cache
def _etsi_validator(certificate_type: Any) -> Any:
    return certificate.create_pkix_certificate_validator_container(
        etsi.create_decoding_validators(certificate_type),
        etsi.create_validators(certificate_type),
    )


def _findings(linter: str, results: Any) -> list[LintFinding]:
    found: list[LintFinding] = []
    for result in results:
        for description in result.finding_descriptions:
            if description.finding.severity <= THRESHOLD:
                found.append(
                    LintFinding(
                        linter=linter,
                        severity=str(description.finding.severity),
                        code=description.finding.code,
                        node=result.node.path,
                        message=description.message,
                    )
                )
    return found


def _own_url(finding: LintFinding) -> bool:
    # The CA's own AIA/CDP URLs are the operator's deployment choice (loopback in
    # development), not the subscriber's request; the names in the SAN are still checked.
    return finding.code.endswith(".internal_domain_name") and (
        "authorityInfoAccessSyntax" in finding.node or "cRLDistributionPoints" in finding.node
    )


def lint_certificate(der: bytes, linters: tuple[str, ...]) -> list[LintFinding]:
    """Findings at WARNING or worse from each named linter ("pkix", "cabf-serverauth",
    "etsi:<TYPE>")."""
    document = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "precertificate")
    findings: list[LintFinding] = []
    for linter in linters:
        if linter == "pkix":
            findings += _findings(linter, _pkix_validator().validate(document.root))
        elif linter == "cabf-serverauth":
            certificate_type = serverauth.determine_certificate_type(document)
            results = _serverauth_validator(certificate_type).validate(document.root)
            results, _ = finding_filter.filter_results(
                serverauth.create_serverauth_finding_filters(certificate_type), results
            )
            findings += [f for f in _findings(linter, results) if not _own_url(f)]
        elif linter.startswith("etsi:"):
            certificate_type = _etsi_type(linter.removeprefix("etsi:"))
            results = _etsi_validator(certificate_type).validate(document.root)
            results, _ = finding_filter.filter_results(
                etsi.create_etsi_finding_filters(certificate_type), results
            )
            findings += [f for f in _findings(linter, results) if not _own_url(f)]
        else:
            raise ValueError(f"unknown linter {linter!r}")
    return findings
