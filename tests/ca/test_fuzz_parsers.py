"""Fuzzing what the CA parses from outside: CSRs, OCSP requests, DER certificate parts.

Every malformed, duplicated or unsupported input must end in a one-line
refusal: ``CertificateRefused`` / ``MalformedRequest`` / ``ValueError`` in-process,
a 4xx problem (or an OCSP error response) over HTTP, exit code 1 with one line
on the CLI. No 500, no traceback, whatever Hypothesis finds.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from asn1crypto.core import ObjectIdentifier
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pki_helpers import make_csr
from typer.testing import CliRunner

from ca import rfc5280
from ca.der import tlv
from ca.keys import open_keystore
from ca.rfc6960 import MalformedRequest, parse_request
from ca.settings import CASettings
from idp.pki.csr import check_csr, parse_csr
from idp.pki.hierarchy import Hierarchy
from idp.pki.refusals import CertificateRefused
from idp.secrets import ensure_secrets
from idp.settings import Settings
from idp.storage.engine import Database
from policies.certificate_profiles import load_profiles

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FUNCTION_FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
APPROVED = ("api.agency.gov.ir", "www.agency.gov.ir")

_KEY = ec.generate_private_key(ec.SECP256R1())
SEED_CSR = x509.load_pem_x509_csr(make_csr(_KEY, dns=APPROVED)[0]).public_bytes(Encoding.DER)
SEED_SPKI = _KEY.public_key().public_bytes(
    Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _seed_ocsp_request() -> bytes:
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "fuzz CA")])
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    issuer = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(issuer_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(issuer_key, hashes.SHA256())
    )
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(issuer, issuer, hashes.SHA1())
        .add_extension(x509.OCSPNonce(b"n" * 16), critical=False)
        .build()
    )
    return request.public_bytes(Encoding.DER)


SEED_OCSP = _seed_ocsp_request()


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few bytes flipped, cut, inserted or dropped."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "drop"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[position:]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[position]
    return bytes(data)


# Extensions a CSR may carry, assembled as raw DER so that nothing is checked on the
# way: repeated, unknown, critical, with odd general names or payloads that are not DER.
_SAN_OID = b"\x06\x03\x55\x1d\x11"
_BASIC_OID = b"\x06\x03\x55\x1d\x13"
_UNKNOWN_OID = b"\x06\x0a\x2b\x06\x01\x04\x01\x83\xc5\x51\x63\x01"
_general_name = st.one_of(
    st.builds(lambda v: tlv(0x82, v), st.binary(max_size=20)),  # dNSName, any bytes
    st.builds(lambda v: tlv(0x82, v.encode()), st.sampled_from(APPROVED)),
    st.builds(lambda v: tlv(0x86, v), st.sampled_from([b"http://x.ir", b""])),  # URI
    st.builds(lambda v: tlv(0x87, v), st.sampled_from([b"\x7f\0\0\1", b"\1\2"])),  # IP
    st.builds(lambda v: tlv(0x81, v), st.sampled_from([b"a@b.ir", b"@"])),  # rfc822Name
    st.builds(lambda v: tlv(0xA0, v), st.binary(max_size=8)),  # otherName, any bytes
)
_extension = st.builds(
    lambda oid, critical, value: tlv(0x30, oid + (b"\x01\x01\xff" if critical else b"")
                                     + tlv(0x04, value)),
    st.sampled_from([_SAN_OID, _BASIC_OID, _UNKNOWN_OID]),
    st.booleans(),
    st.one_of(
        st.builds(lambda names: tlv(0x30, b"".join(names)), st.lists(_general_name, max_size=3)),
        st.just(tlv(0x30, b"\x01\x01\xff\x02\x01\x00")),  # cA TRUE, pathLen 0
        st.binary(max_size=12),
    ),
)  # fmt: skip
extensions = st.lists(_extension, max_size=4)
_ALGORITHMS = {
    "sha256_ecdsa": ("1.2.840.10045.4.3.2", hashes.SHA256()),
    "sha1_ecdsa": ("1.2.840.10045.4.1", hashes.SHA1()),
    "md5_rsa": ("1.2.840.113549.1.1.4", hashes.SHA256()),
    "sha256_rsa": ("1.2.840.113549.1.1.11", hashes.SHA256()),
    "ed25519": ("1.3.101.112", hashes.SHA256()),
}


def structured_csr(extension_list: list[bytes], algorithm: str) -> bytes:
    """A CSR (RFC 2986 section 4) around the given raw extensions, validly signed."""
    attributes = b""
    if extension_list:
        request = tlv(0x30, ObjectIdentifier("1.2.840.113549.1.9.14").dump()
                      + tlv(0x31, tlv(0x30, b"".join(extension_list))))  # fmt: skip
        attributes = request
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "fuzz")]).public_bytes()
    tbs = tlv(0x30, b"\x02\x01\x00" + subject + SEED_SPKI + tlv(0xA0, attributes))
    oid, digest = _ALGORITHMS[algorithm]
    signature = _KEY.sign(tbs, ec.ECDSA(digest))
    algorithm_id = tlv(0x30, ObjectIdentifier(oid).dump())
    return tlv(0x30, tbs + algorithm_id + tlv(0x03, b"\0" + signature))


_SAN = tlv(0x30, _SAN_OID + tlv(0x04, tlv(0x30, tlv(0x82, APPROVED[0].encode()))))
TWO_SANS = structured_csr([_SAN, _SAN], "sha256_ecdsa")  # once a 500 and a traceback
csr_inputs = st.one_of(
    st.binary(max_size=300),
    mutated(SEED_CSR),
    st.builds(
        structured_csr,
        extensions,
        st.sampled_from(["sha256_ecdsa", "sha1_ecdsa", "md5_rsa", "sha256_rsa", "ed25519"]),
    ),
)


def _as_pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "\n")
    return (
        f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n".encode()
    )


def _one_line(text: str) -> None:
    assert text and "\n" not in text and "Traceback" not in text


# -- in-process parsers ---------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(der=csr_inputs, as_pem=st.booleans())
@example(der=TWO_SANS, as_pem=False)
def test_fuzzed_csr_is_decided_or_refused_in_one_line(der: bytes, as_pem: bool) -> None:
    profile = load_profiles()["tls-server"]
    try:
        csr, public_key = parse_csr(_as_pem(der) if as_pem else der)
        check_csr(csr, public_key, profile, x509.Name([]), APPROVED)
    except CertificateRefused as refusal:
        assert refusal.status == 400
        _one_line(refusal.detail)


@settings(max_examples=500, deadline=None)
@given(der=st.one_of(st.binary(max_size=200), mutated(SEED_OCSP)))
def test_fuzzed_ocsp_request_parses_or_is_malformed(der: bytes) -> None:
    try:
        request = parse_request(der)
    except MalformedRequest as exc:
        _one_line(str(exc) or "malformed")
        return
    assert request.cert_ids


@settings(max_examples=500, deadline=None)
@given(der=st.one_of(st.binary(max_size=80), mutated(SEED_SPKI)))
def test_fuzzed_subject_public_key_info_is_read_or_value_error(der: bytes) -> None:
    try:
        bits = rfc5280.subject_public_key(der)
    except ValueError as exc:
        _one_line(str(exc))
        return
    assert isinstance(bits, bytes)


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def operator(
    hoviyat_settings: Settings,
    init_report: dict,
    app_client: TestClient,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "fuzz passphrase")
    db = Database(hoviyat_settings.resolved_database_url)
    Hierarchy(
        db, open_keystore(CASettings(), hoviyat_settings.data_dir), hoviyat_settings.issuer
    ).init()
    yield app_client, {"Authorization": f"Bearer {admin_token}"}
    db.dispose()


def _problem_or_success(response: object) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, response.text  # type: ignore[attr-defined]
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@SQLITE_ONLY
@settings(max_examples=60, deadline=None, suppress_health_check=FUNCTION_FIXTURES)
@given(
    der=csr_inputs,
    profile=st.sampled_from(["tls-server", "person-authentication", "ocsp-responder", "x"]),
    subject=st.one_of(
        st.just({"dns_names": list(APPROVED)}),
        st.dictionaries(
            st.sampled_from(["dns_names", "national_code", "service_name", "validity_days"]),
            json_values,
            max_size=3,
        ),
    ),
)
@example(der=TWO_SANS, profile="tls-server", subject={"dns_names": list(APPROVED)})
def test_fuzzed_certificate_requests_over_http_are_never_500(
    operator: tuple[TestClient, dict[str, str]], der: bytes, profile: str, subject: dict
) -> None:
    client, auth = operator
    body = {"csr": _as_pem(der).decode(), "profile": profile, "subject": subject}
    _problem_or_success(client.post("/v1/certificates", json=body, headers=auth))


@SQLITE_ONLY
@settings(max_examples=60, deadline=None, suppress_health_check=FUNCTION_FIXTURES)
@given(body=json_values, serial=st.text(max_size=50))
def test_fuzzed_revocation_and_lookup_requests_are_never_500(
    operator: tuple[TestClient, dict[str, str]], body: object, serial: str
) -> None:
    client, auth = operator
    path_serial = quote(serial, safe="") or "00"
    _problem_or_success(
        client.post(f"/v1/certificates/{path_serial}/revoke", json=body, headers=auth)
    )
    _problem_or_success(client.get(f"/v1/certificates/{path_serial}", headers=auth))


@SQLITE_ONLY
@settings(max_examples=80, deadline=None, suppress_health_check=FUNCTION_FIXTURES)
@given(der=st.one_of(st.binary(max_size=200), mutated(SEED_OCSP)))
def test_fuzzed_ocsp_requests_over_http_get_ocsp_answers(
    operator: tuple[TestClient, dict[str, str]], der: bytes
) -> None:
    client, _ = operator
    posted = client.post("/ocsp", content=der, headers={"Content-Type": "application/ocsp-request"})
    encoded = base64.b64encode(der).decode().replace("/", "%2F").replace("+", "%2B")
    fetched = client.get(f"/ocsp/{encoded or 'AA=='}")
    for response in (posted, fetched):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/ocsp-response"
        ocsp.load_der_ocsp_response(response.content)


# -- on the CLI ----------------------------------------------------------------------


@pytest.fixture
def cli_environment(
    tmp_path: Path,
    database_url: str,
    synthetic_registry_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    from idp.cli.ca import ca_app

    data_dir = tmp_path / "data"
    for name, value in {
        "HOVIYAT_DATA_DIR": str(data_dir),
        "HOVIYAT_DATABASE_URL": database_url,
        "HOVIYAT_REGISTRY_ADAPTER": "synthetic",
        "HOVIYAT_REGISTRY_PATH": str(synthetic_registry_path),
        "HOVIYAT_ISSUER": "https://pki.hoviyat.ir",
        "HOVIYAT_CA_PASSPHRASE": "cli fuzz passphrase",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HOVIYAT_CA_KEY_BACKEND", raising=False)
    ensure_secrets(data_dir / "secrets.json")
    assert CliRunner().invoke(ca_app, ["init"]).exit_code == 0
    yield tmp_path


@SQLITE_ONLY
@settings(max_examples=40, deadline=None, suppress_health_check=FUNCTION_FIXTURES)
@given(der=csr_inputs, as_pem=st.booleans())
@example(der=TWO_SANS, as_pem=True)
def test_fuzzed_csr_on_cli_is_one_line_never_a_traceback(
    cli_environment: Path, der: bytes, as_pem: bool
) -> None:
    from idp.cli.ca import ca_app

    path = cli_environment / f"fuzz-{os.getpid()}.csr"
    path.write_bytes(_as_pem(der) if as_pem else der)
    result = CliRunner().invoke(
        ca_app,
        ["issue", "--csr", str(path), "--profile", "tls-server",
         "--dns", APPROVED[0], "--dns", APPROVED[1]],
    )  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code in (0, 1)
    if result.exit_code == 1:
        assert result.stdout == ""
        _one_line(result.stderr.rstrip("\n"))
