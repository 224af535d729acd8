"""Supply-chain and static security checks for CI: pip-audit and bandit.

Both fail the run on any finding that ``.ci/security-exceptions.toml`` does not
list with a reason. pip-audit needs a vulnerability database (PyPI's JSON API
or OSV); where none answers, this says the dependencies were NOT audited and
how many, rather than printing "no known vulnerabilities" as if it had looked.
Set ``HOVIYAT_REQUIRE_DEPENDENCY_AUDIT=1`` where a database is reachable to make
an unaudited dependency a failure too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
EXCEPTIONS = ROOT / ".ci" / "security-exceptions.toml"
SOURCES = ["idp", "ca", "verifiers", "policies"]


def _exceptions() -> dict[str, list[dict[str, str]]]:
    data = tomllib.loads(EXCEPTIONS.read_text(encoding="utf-8"))
    for kind in ("vulnerability", "bandit"):
        for entry in data.get(kind, []):
            if not entry.get("reason", "").strip():
                sys.exit(f"security-exceptions.toml: a {kind} entry has no reason: {entry}")
    return data


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def audit_dependencies(ignored: list[dict[str, str]]) -> int:
    command = [
        _tool("pip-audit"),
        "-r",
        str(LOCK),
        "--no-deps",
        "--disable-pip",
        "-s",
        "pypi",
        "-f",
        "json",
        "--progress-spinner",
        "off",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (fixed argv)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit: NOT AUDITED: the tool failed ({tail})")
        return 1 if os.environ.get("HOVIYAT_REQUIRE_DEPENDENCY_AUDIT") == "1" else 0
    known = {entry["id"] for entry in ignored}
    findings, unaudited = [], []
    for dependency in report.get("dependencies", []):
        if "skip_reason" in dependency:
            unaudited.append(dependency["name"])
            continue
        for vulnerability in dependency.get("vulns", []):
            ids = {vulnerability["id"], *vulnerability.get("aliases", [])}
            if not ids & known:
                fixed = vulnerability.get("fix_versions")
                findings.append(
                    f"{dependency['name']} {dependency['version']}: "
                    f"{vulnerability['id']} (fixed in {fixed})"
                )
    total = len(report.get("dependencies", []))
    for finding in findings:
        print(f"pip-audit: VULNERABLE: {finding}")
    if unaudited:
        print(
            f"pip-audit: NOT AUDITED: {len(unaudited)} of {total} locked packages could not "
            "be checked (no vulnerability database reachable from this machine); "
            "run `make audit` where one is, see README.md"
        )
    elif not findings:
        print(
            f"pip-audit: {total} locked packages checked, no vulnerability outside the "
            "reviewed exceptions"
        )
    if findings:
        return 1
    strict = os.environ.get("HOVIYAT_REQUIRE_DEPENDENCY_AUDIT") == "1"
    return 1 if unaudited and strict else 0


def _excepted(finding: dict[str, object], ignored: list[dict[str, str]]) -> bool:
    code = str(finding.get("code", ""))
    return any(
        entry["test_id"] == finding["test_id"]
        and entry["file"] == finding["filename"]
        and entry["code"] in code
        for entry in ignored
    )


def static_analysis(ignored: list[dict[str, str]]) -> int:
    command = [_tool("bandit"), "-q", "-r", *SOURCES, "--severity-level", "medium", "-f", "json"]
    result = subprocess.run(  # noqa: S603 (fixed argv)
        command, capture_output=True, text=True, check=False, cwd=ROOT
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(f"bandit: failed to run: {result.stderr.strip()[-500:]}")
        return 1
    findings = [f for f in report["results"] if not _excepted(f, ignored)]
    for finding in findings:
        print(
            f"bandit: {finding['test_id']} {finding['issue_severity']} "
            f"{finding['filename']}:{finding['line_number']}: {finding['issue_text']}"
        )
    excepted = len(report["results"]) - len(findings)
    print(
        f"bandit: {len(findings)} medium-or-higher findings outside the reviewed "
        f"exceptions ({excepted} excepted with a reason)"
    )
    return 1 if findings else 0


def main() -> int:
    exceptions = _exceptions()
    failures = audit_dependencies(exceptions.get("vulnerability", []))
    failures += static_analysis(exceptions.get("bandit", []))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
