"""tls-alpn-01 (RFC 8737) from the attacker's side: a TLS server that answers
with anything but the exact validation certificate must not pass."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from responders import RawTcpResponder, acme_tls_alpn_certificate, free_port
from validation_world import World, challenge, fails, loopback_world, passes

from idp.acme.validation.failure import ChallengeFailed
from idp.acme.validation.tls_alpn01 import ACME_IDENTIFIER_OID, check_certificate


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with loopback_world("127.0.0.46", "127.0.0.47") as world:
        yield world


def der_of(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def test_the_validation_certificate_passes_and_sni_is_the_name(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.tls.serve(name, key_authorization)
    passes("tls-alpn-01", name, token, key_authorization, world.settings())
    assert name in world.tls.server_names


def test_attack_wrong_alpn(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.tls.serve(name, key_authorization, alpn=["http/1.1"])
    failure = fails("tls-alpn-01", name, token, key_authorization, world.settings())
    assert failure.error == "tls"
    assert "acme-tls/1" in failure.detail


def test_attack_no_alpn_at_all(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.tls.serve(name, key_authorization, alpn=[])
    assert fails("tls-alpn-01", name, token, key_authorization, world.settings()).error == "tls"


def test_attack_acme_identifier_not_critical(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.tls.serve(name, key_authorization, critical=False)
    failure = fails("tls-alpn-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"
    assert "critical" in failure.detail


def test_attack_two_sans(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.tls.serve(name, key_authorization, extra_names=["victim.agency.example"])
    failure = fails("tls-alpn-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"
    assert "subjectAltName" in failure.detail


def test_attack_san_names_another_domain(world: World) -> None:
    name, other = world.name(), world.name("other")
    _, key_authorization = challenge()
    cert_pem, _ = acme_tls_alpn_certificate(other, key_authorization)
    with pytest.raises(ChallengeFailed, match="another domain"):
        check_certificate(der_of(cert_pem), name, key_authorization)


def test_attack_wrong_digest(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    _, someone_elses = challenge()
    world.tls.serve(name, key_authorization, digest=hashlib.sha256(someone_elses.encode()).digest())
    failure = fails("tls-alpn-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"


@pytest.mark.parametrize(
    "digest",
    [
        b"",
        b"\x00" * 32,
        b"\x00" * 31,
        b"\x00" * 33,
        hashlib.sha256(b"x").digest() + b"\x00",
    ],
)
def test_attack_digest_of_the_wrong_shape(world: World, digest: bytes) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.tls.serve(name, key_authorization, digest=digest)
    assert fails("tls-alpn-01", name, token, key_authorization, world.settings()).error == (
        "incorrectResponse"
    )


def test_attack_digest_of_the_key_authorization_not_der_wrapped() -> None:
    # The extnValue is an OCTET STRING holding the digest; the bare digest
    # (what some early drafts did) is not accepted.
    name = "a.agency.example"
    _, key_authorization = challenge()
    bare = hashlib.sha256(key_authorization.encode()).digest()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=True)
        .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, bare), critical=True)
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    with pytest.raises(ChallengeFailed, match="SHA-256"):
        check_certificate(certificate.public_bytes(Encoding.DER), name, key_authorization)


def test_attack_no_acme_identifier(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.tls.serve(name, key_authorization, identifier_extension=False)
    failure = fails("tls-alpn-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"


def test_attack_no_certificate_for_the_name(world: World) -> None:
    # The server has no certificate for this SNI: the handshake fails.
    name = world.name()
    token, key_authorization = challenge()
    assert fails("tls-alpn-01", name, token, key_authorization, world.settings()).error == "tls"


def test_attack_wildcard_is_not_validated_by_tls_alpn01(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.tls.serve(f"*.{name}", key_authorization)
    failure = fails("tls-alpn-01", f"*.{name}", token, key_authorization, world.settings())
    assert failure.error == "malformed"


def test_attack_connection_refused(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    settings = world.settings(tls_alpn01_port=free_port(world.web.address))
    assert fails("tls-alpn-01", name, token, key_authorization, settings).error == "connection"


def test_attack_nxdomain(world: World) -> None:
    token, key_authorization = challenge()
    failure = fails(
        "tls-alpn-01", "absent.agency.example", token, key_authorization, world.settings()
    )
    assert failure.error == "dns"


def test_attack_plain_text_instead_of_tls(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    with RawTcpResponder(world.web.address) as server:
        server.payload = b"HTTP/1.1 400 Bad Request\r\n\r\n"
        settings = world.settings(tls_alpn01_port=server.port)
        assert fails("tls-alpn-01", name, token, key_authorization, settings).error in {
            "tls",
            "connection",
        }


def test_attack_silent_server_times_out_and_does_not_hang(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    with RawTcpResponder(world.web.address) as server:
        server.payload = None
        settings = world.settings(tls_alpn01_port=server.port, validation_timeout_seconds=0.5)
        assert fails("tls-alpn-01", name, token, key_authorization, settings).error == (
            "connection"
        )


# ------------------------------------------------------------------ fuzzing

_KA = "tok.thumb"


@functools.cache
def _validation_certificate() -> bytes:
    # One certificate for every example: its length fixes what positions exist.
    return der_of(acme_tls_alpn_certificate("a.agency.example", _KA)[0])


@hypothesis_settings(max_examples=300)
@given(der=st.binary(max_size=600))
def test_fuzz_any_bytes_as_the_certificate_fail_cleanly(der: bytes) -> None:
    with pytest.raises(ChallengeFailed) as failure:
        check_certificate(der, "a.agency.example", _KA)
    assert failure.value.error == "incorrectResponse"


@pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
@hypothesis_settings(max_examples=1500)
@given(data=st.data())
def test_fuzz_mutated_validation_certificate_passes_only_unmutated(data: st.DataObject) -> None:
    der = bytearray(_validation_certificate())
    position = data.draw(st.integers(0, len(der) - 1))
    value = data.draw(st.integers(0, 255))
    original = der[position]
    der[position] = value
    try:
        check_certificate(bytes(der), "a.agency.example", _KA)
    except ChallengeFailed as failure:
        assert failure.error == "incorrectResponse"
        return
    # Passing after a change is fine only if the change left the proof intact:
    # the signature, serial or key octets (the validator checks no signature,
    # by design, §4); never the name or the digest.
    certificate = x509.load_der_x509_certificate(bytes(der))
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [n.value.lower() for n in san] == ["a.agency.example"] or value == original
    acme = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert acme.critical
    assert acme.value.value == b"\x04\x20" + hashlib.sha256(_KA.encode()).digest()  # type: ignore[attr-defined]


@hypothesis_settings(max_examples=100)
@given(
    names=st.lists(
        st.sampled_from(["a.agency.example", "b.agency.example", "A.agency.example"]),
        min_size=1,
        max_size=3,
    ),
    critical=st.booleans(),
    digest_of=st.sampled_from([_KA, _KA + "x", ""]),
    with_identifier=st.booleans(),
)
def test_fuzz_certificate_shapes_pass_exactly_when_rfc8737_says(
    names: list[str], critical: bool, digest_of: str, with_identifier: bool
) -> None:
    cert_pem, _ = acme_tls_alpn_certificate(
        names[0],
        _KA,
        extra_names=names[1:],
        critical=critical,
        digest=hashlib.sha256(digest_of.encode()).digest(),
        identifier_extension=with_identifier,
    )
    should_pass = (
        len(names) == 1
        and names[0].lower() == "a.agency.example"
        and critical
        and digest_of == _KA
        and with_identifier
    )
    try:
        check_certificate(der_of(cert_pem), "a.agency.example", _KA)
    except ChallengeFailed:
        assert not should_pass
    else:
        assert should_pass


@pytest.fixture(scope="module")
def raw(world: World) -> Iterator[RawTcpResponder]:
    with RawTcpResponder(world.web.address) as server:
        yield server


@hypothesis_settings(max_examples=60)
@given(
    payload=st.binary(max_size=300)
    | st.binary(max_size=300).map(lambda tail: b"\x16\x03\x03" + tail)  # a TLS record header
)
def test_fuzz_any_bytes_instead_of_a_handshake_fail_cleanly(
    world: World, raw: RawTcpResponder, payload: bytes
) -> None:
    name = world.name()
    token, key_authorization = challenge()
    raw.payload = payload
    settings = world.settings(tls_alpn01_port=raw.port, validation_timeout_seconds=2)
    assert fails("tls-alpn-01", name, token, key_authorization, settings).error in {
        "tls",
        "connection",
    }


def test_ipv6_refusing_falls_back_to_ipv4(world: World) -> None:
    name = world.name()
    world.dns.set(name, "AAAA", "::1")  # nothing listens there on this port
    token, key_authorization = challenge()
    world.tls.serve(name, key_authorization)
    passes("tls-alpn-01", name, token, key_authorization, world.settings())
