"""ACME Renewal Information (RFC 9773): certID, the renewal-info resource, ``replaces``.

Certificates are issued by the real registration step into the test database
(SQLite and PostgreSQL); the resource is asked through the real app over ASGI.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from acme_pki_support import acme_pki, issue_tls  # noqa: F401
from cryptography import x509
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ca.revocation import RevocationReason
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount
from idp.acme.rfc9773 import (
    RETRY_AFTER_SECONDS,
    CertId,
    CertIdMalformed,
    already_replaced,
    cert_id_of,
    check_replaces,
    parse_cert_id,
)
from idp.pki.registration import Pki
from idp.pki.revocation import Actor, revoke
from idp.storage.engine import Database

ACME = "urn:ietf:params:acme:error:"
NAMES = ("www.tax.example.com", "api.tax.example.com")
CA = "infrastructure"  # the tls-server profiles' issuing CA
OPERATOR = Actor("operator", "test-operator", "mass revocation drill")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def account(account_id: str = "acct-1") -> AcmeAccount:
    return AcmeAccount(
        id=account_id,
        status="valid",
        jwk_thumbprint="thumb",
        national_id="10100000001",
        service_code="demo-tax-portal",
        eab_key_id="eab-1",
    )


def parse_instant(text: str) -> datetime:
    assert text.endswith("Z")  # RFC 3339 in UTC
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- certID (§4.1) ---------------------------------------------------------------------


def test_cert_id_matches_the_rfc_example() -> None:
    # RFC 9773 §4.1: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
    # serial 00:87:65:43:21 (the DER content keeps the sign octet).
    key_id = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    cert_id = CertId(key_id, 0x87654321)
    assert str(cert_id) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert parse_cert_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE") == cert_id


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE", "padding"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE=", "padding"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNR.AIdlQyE", "unused trailing bits set"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyF", "unused trailing bits set"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AACHZUMh", "a leading zero octet too many"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.h2VDIQ", "negative: the sign octet dropped"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AA", "serial zero"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.", "empty serial"),
        (".AIdlQyE", "empty key identifier"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ", "one part"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE.AIdlQyE", "three parts"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl+yE", "standard base64 alphabet"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl/yE", "standard base64 alphabet"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQ", "impossible length"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl QyE", "space"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE\n", "newline"),
        (b64(b"\x01" * 33) + ".AIdlQyE", "key identifier too long"),
        ("aYhba4dGQEHhs3uEe6CuLN4ByNQ." + b64(b"\x01" * 21), "serial over 20 octets"),
        ("A" * 500 + ".AIdlQyE", "far too long"),
        ("", "empty"),
    ],
)
def test_attack_non_canonical_or_malformed_cert_ids_are_refused(text: str, why: str) -> None:
    with pytest.raises(CertIdMalformed):
        parse_cert_id(text)


@given(st.binary(min_size=1, max_size=32), st.integers(min_value=1, max_value=2**159 - 1))
def test_cert_id_round_trips(key_id: bytes, serial: int) -> None:
    text = str(CertId(key_id, serial))
    assert parse_cert_id(text) == CertId(key_id, serial)


@given(st.text(max_size=120))
@example("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
@example("AA.AQ")
def test_fuzz_cert_id_parser_accepts_only_its_own_spelling(text: str) -> None:
    # Any text either fails cleanly or is the one canonical spelling of what it
    # names: two spellings of one certificate would both pass a unique index.
    try:
        parsed = parse_cert_id(text)
    except CertIdMalformed:
        return
    assert str(parsed) == text
    assert parsed.serial > 0 and 1 <= len(parsed.key_identifier) <= 32


@given(st.text(alphabet="ABCDEFGHabcdefgh0123456789-_.=", max_size=60))
def test_fuzz_cert_id_parser_on_near_base64url(text: str) -> None:
    try:
        parsed = parse_cert_id(text)
    except CertIdMalformed:
        return
    assert str(parsed) == text


def test_cert_id_of_a_real_certificate(acme_pki: Pki) -> None:  # noqa: F811
    issued = issue_tls(acme_pki, NAMES, "acme:acct-1")
    parsed = parse_cert_id(cert_id_of(issued.certificate))
    aki = issued.certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert parsed.key_identifier == aki.value.key_identifier
    assert parsed.serial_hex == issued.serial_hex
    record = acme_pki.record(issued.serial_hex)
    assert record is not None and parsed.issuer_key_id == record.issuer_key_id


# --- the renewal-info resource (§4.2) ---------------------------------------------------


@pytest.mark.parametrize("profile", ["tls-server-short", "tls-server"])
def test_window_of_a_good_certificate_is_in_the_later_part_of_its_life(
    acme_pki: Pki,  # noqa: F811
    app_client: TestClient,
    profile: str,
) -> None:
    issued = issue_tls(acme_pki, NAMES, "acme:acct-1", profile=profile)
    response = app_client.get(f"/acme/{CA}/renewal-info/{cert_id_of(issued.certificate)}")
    assert response.status_code == 200, response.text
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["Cache-Control"] == f"public, max-age={RETRY_AFTER_SECONDS}"
    window = response.json()["suggestedWindow"]
    start, end = parse_instant(window["start"]), parse_instant(window["end"])
    not_before = issued.certificate.not_valid_before_utc
    not_after = issued.certificate.not_valid_after_utc
    validity = not_after - not_before + timedelta(seconds=1)
    assert abs(start - (not_before + validity * 2 / 3)) <= timedelta(seconds=1)
    assert abs(end - (not_before + validity * 5 / 6)) <= timedelta(seconds=1)
    assert datetime.now(UTC) < start < end < not_after  # §4.2: end after start
    assert not_after - end >= validity / 6 - timedelta(seconds=1)  # room to retry


def test_attack_mass_revocation_opens_every_window_at_once(
    acme_pki: Pki,  # noqa: F811
    app_client: TestClient,
) -> None:
    issued = [issue_tls(acme_pki, (f"h{i}.tax.example.com",), "acme:acct-1") for i in range(3)]
    kept = issue_tls(acme_pki, ("kept.tax.example.com",), "acme:acct-1")
    for certificate in issued:
        revoke(acme_pki.db, int(certificate.serial_hex, 16), RevocationReason.keyCompromise,
               OPERATOR)  # fmt: skip
    now = datetime.now(UTC)
    for certificate in issued:
        response = app_client.get(f"/acme/{CA}/renewal-info/{cert_id_of(certificate.certificate)}")
        assert response.status_code == 200, response.text
        window = response.json()["suggestedWindow"]
        start, end = parse_instant(window["start"]), parse_instant(window["end"])
        assert start < end <= now  # already over: a polling client renews at once
    untouched = app_client.get(f"/acme/{CA}/renewal-info/{cert_id_of(kept.certificate)}")
    assert parse_instant(untouched.json()["suggestedWindow"]["start"]) > now


def assert_problem(response: object, status: int, error: str = "malformed") -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == ACME + error
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]


def test_attack_unknown_cert_ids_are_not_found(acme_pki: Pki, app_client: TestClient) -> None:  # noqa: F811
    issued = issue_tls(acme_pki, NAMES, "acme:acct-1")
    real = parse_cert_id(cert_id_of(issued.certificate))
    unknown_serial = CertId(real.key_identifier, real.serial ^ 1)
    other_issuer = CertId(secrets.token_bytes(20), real.serial)  # right serial, wrong CA key
    for cert_id in (unknown_serial, other_issuer):
        assert_problem(app_client.get(f"/acme/{CA}/renewal-info/{cert_id}"), 404)
    # The right certificate asked under another CA's directory is not that CA's.
    assert_problem(app_client.get(f"/acme/persons/renewal-info/{real}"), 404)


@pytest.mark.parametrize(
    "cert_id",
    ["aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE", "not-a-cert-id", "AA.AA", "x" * 300, "%00.%ff"],
)
def test_attack_malformed_cert_ids_are_malformed(app_client: TestClient, cert_id: str) -> None:
    assert_problem(app_client.get(f"/acme/{CA}/renewal-info/{cert_id}"), 400)


def test_renewal_info_needs_no_account(acme_pki: Pki, app_client: TestClient) -> None:  # noqa: F811
    # §4.1: an unauthenticated GET; POST-as-GET is not how ARI is asked.
    issued = issue_tls(acme_pki, NAMES, "acme:someone-else")
    url = f"/acme/{CA}/renewal-info/{cert_id_of(issued.certificate)}"
    assert app_client.get(url, headers={}).status_code == 200
    assert app_client.post(url, content=b"{}").status_code == 405


# --- replaces (§5) ----------------------------------------------------------------------


def test_replaces_accepts_the_accounts_own_certificate(acme_pki: Pki) -> None:  # noqa: F811
    issued = issue_tls(acme_pki, NAMES, "acme:acct-1")
    cert_id = cert_id_of(issued.certificate)
    parsed = check_replaces(acme_pki.db, account(), cert_id, names=["WWW.tax.example.com"])
    assert str(parsed) == cert_id and parsed.serial_hex == issued.serial_hex
    assert check_replaces(acme_pki.db, account(), cert_id) == parsed  # names not given


def test_replaces_accepts_a_revoked_certificate(acme_pki: Pki) -> None:  # noqa: F811
    # Replacing revoked certificates is what ARI's early windows are for.
    issued = issue_tls(acme_pki, NAMES, "acme:acct-1")
    revoke(acme_pki.db, int(issued.serial_hex, 16), RevocationReason.superseded, OPERATOR)
    assert check_replaces(acme_pki.db, account(), cert_id_of(issued.certificate), names=NAMES)


def problem_of(db: Database, who: AcmeAccount, cert_id: object, **kwargs: object) -> AcmeProblem:
    with pytest.raises(AcmeProblem) as raised:
        check_replaces(db, who, cert_id, **kwargs)  # type: ignore[arg-type]
    return raised.value


def test_attack_replacing_another_accounts_certificate(acme_pki: Pki) -> None:  # noqa: F811
    theirs = issue_tls(acme_pki, NAMES, "acme:acct-2")
    problem = problem_of(acme_pki.db, account("acct-1"), cert_id_of(theirs.certificate))
    assert (problem.error, problem.status) == ("unauthorized", 403)
    # An operator-issued certificate for the same names belongs to no account.
    operators = issue_tls(acme_pki, NAMES, "operator-1", profile="tls-server")
    problem = problem_of(acme_pki.db, account("acct-1"), cert_id_of(operators.certificate))
    assert (problem.error, problem.status) == ("unauthorized", 403)


def test_attack_account_id_prefix_is_not_ownership(acme_pki: Pki) -> None:  # noqa: F811
    theirs = issue_tls(acme_pki, NAMES, "acme:acct-10")
    problem = problem_of(acme_pki.db, account("acct-1"), cert_id_of(theirs.certificate))
    assert problem.error == "unauthorized"


def test_attack_replaces_with_no_name_in_common(acme_pki: Pki) -> None:  # noqa: F811
    issued = issue_tls(acme_pki, NAMES, "acme:acct-1")
    problem = problem_of(
        acme_pki.db, account(), cert_id_of(issued.certificate), names=["other.tax.example.com"]
    )
    assert (problem.error, problem.status) == ("unauthorized", 403)


def test_attack_replaces_an_unknown_or_malformed_certificate(acme_pki: Pki) -> None:  # noqa: F811
    issued = issue_tls(acme_pki, NAMES, "acme:acct-1")
    real = parse_cert_id(cert_id_of(issued.certificate))
    for cert_id in (
        str(CertId(real.key_identifier, real.serial + 2)),
        str(CertId(b"\x01" * 20, real.serial)),
        str(real) + "=",  # a second spelling of the real one: would dodge a unique index
        b64(real.key_identifier) + "." + b64(b"\x00" + real.serial.to_bytes(16, "big")),
        "",
        7,
        None,
    ):
        problem = problem_of(acme_pki.db, account(), cert_id)
        assert (problem.error, problem.status) == ("malformed", 400), cert_id


def test_already_replaced_problem() -> None:
    problem = already_replaced("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
    assert (problem.error, problem.status) == ("alreadyReplaced", 409)
    assert problem.to_dict()["type"] == ACME + "alreadyReplaced"


def test_renewal_info_is_described_by_its_rfc_not_the_openapi_document(
    app_client: TestClient,
) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if "renewal-info" in path]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_fuzz_renewal_info_route_answers_problems_never_errors(app_client: TestClient) -> None:
    # Outside bytes in the path: every answer is a 400 or 404 ACME problem, never a 5xx.
    @given(st.text(min_size=1, max_size=300))
    @settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def ask(cert_id: str) -> None:
        response = app_client.get(f"/acme/{CA}/renewal-info/{quote(cert_id, safe='')}")
        assert response.status_code in (400, 404), (cert_id, response.status_code)
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            assert response.json()["type"].startswith(ACME)

    ask()
