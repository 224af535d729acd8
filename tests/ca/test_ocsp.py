"""OCSP encoding (ca/rfc6960.py): requests from real clients' encodings, responses linted."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_helpers import NOW, lint, make_pki

from ca.crl import KeySigner
from ca.revocation import RevocationReason
from ca.rfc6960 import (
    CertificateStatus,
    MalformedRequest,
    Responder,
    ResponseStatus,
    decode_get_path,
    error_response,
    parse_request,
)

HOUR = timedelta(hours=1)


def _request(cert: x509.Certificate, issuer: x509.Certificate, algorithm=None, nonce=None):
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def pki_and_responder():
    pki = make_pki()
    certificate, key = pki.responder()
    return pki, Responder(pki.ca, certificate, KeySigner(key))


def _answer(responder: Responder, der: bytes, status: CertificateStatus) -> bytes:
    request = parse_request(der)
    assert all(responder.serves(cert_id) for cert_id in request.cert_ids)
    return responder.respond(
        [(cert_id, status) for cert_id in request.cert_ids],
        produced_at=NOW,
        next_update=NOW + HOUR,
        nonce_extension=request.nonce_extension,
    )


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256()], ids=["sha1", "sha256"])
@pytest.mark.parametrize(
    "status",
    [
        CertificateStatus.good(),
        CertificateStatus.revoked(NOW - HOUR, RevocationReason.keyCompromise),
        CertificateStatus.revoked(NOW - HOUR, RevocationReason.unspecified),
        CertificateStatus.unknown(),
    ],
    ids=["good", "revoked", "revoked-unspecified", "unknown"],
)
def test_response_carries_status_and_lints_clean(
    tmp_path: Path, pki_and_responder, algorithm, status: CertificateStatus
):
    pki, responder = pki_and_responder
    leaf, _ = pki.leaf()
    nonce = b"\x01" * 16
    der = _answer(responder, _request(leaf, pki.ca, algorithm, nonce), status)
    (tmp_path / "resp.der").write_bytes(der)
    result = lint("lint_ocsp_response", tmp_path / "resp.der")
    assert result.returncode == 0, result.stdout + result.stderr

    parsed = ocsp.load_der_ocsp_response(der)
    assert parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.serial_number == leaf.serial_number
    assert isinstance(parsed.hash_algorithm, type(algorithm))
    assert parsed.certificate_status.name == status.state.upper()
    assert parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert parsed.certificates[0] == responder.certificate
    responder.certificate.public_key().verify(  # type: ignore[call-arg]
        parsed.signature, parsed.tbs_response_bytes, _ecdsa(parsed)
    )
    if status.state == "revoked":
        assert parsed.revocation_time_utc == NOW - HOUR
        expected = None if status.reason is RevocationReason.unspecified else "key_compromise"
        assert (parsed.revocation_reason.name if parsed.revocation_reason else None) == expected


def _ecdsa(parsed: ocsp.OCSPResponse):
    from cryptography.hazmat.primitives.asymmetric import ec

    assert parsed.signature_hash_algorithm is not None
    return ec.ECDSA(parsed.signature_hash_algorithm)


def test_no_nonce_asked_none_echoed(pki_and_responder):
    pki, responder = pki_and_responder
    leaf, _ = pki.leaf()
    der = _answer(responder, _request(leaf, pki.ca), CertificateStatus.good())
    with pytest.raises(x509.ExtensionNotFound):
        ocsp.load_der_ocsp_response(der).extensions.get_extension_for_class(x509.OCSPNonce)


@pytest.mark.parametrize("length", [0, 33, 64])
def test_nonce_outside_rfc9654_bounds_is_malformed(pki_and_responder, length: int):
    pki, _ = pki_and_responder
    leaf, _ = pki.leaf()
    # cryptography refuses to build such a nonce, so encode the request by hand
    request = asn1_ocsp.OCSPRequest.load(_request(leaf, pki.ca, nonce=b"\x02" * 8))
    request["tbs_request"]["request_extensions"][0]["extn_value"] = core.OctetString(
        b"\x03" * length
    )
    with pytest.raises(MalformedRequest, match="RFC 9654"):
        parse_request(request.dump())


def test_largest_allowed_nonce_is_echoed(pki_and_responder):
    pki, responder = pki_and_responder
    leaf, _ = pki.leaf()
    der = _answer(responder, _request(leaf, pki.ca, nonce=b"\x07" * 32), CertificateStatus.good())
    nonce = ocsp.load_der_ocsp_response(der).extensions.get_extension_for_class(x509.OCSPNonce)
    assert nonce.value.nonce == b"\x07" * 32


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00", b"hello world", b"\x30\x03\x02\x01\x01", b"\x30\x80" + b"\x00" * 10],
    ids=["empty", "zero", "text", "wrong-shape", "indefinite"],
)
def test_garbage_is_malformed(garbage: bytes):
    with pytest.raises(MalformedRequest):
        parse_request(garbage)


def test_other_issuer_is_not_served(pki_and_responder):
    pki, responder = pki_and_responder
    stranger = make_pki()
    leaf, _ = stranger.leaf()
    request = parse_request(_request(leaf, stranger.ca))
    assert not responder.serves(request.cert_ids[0])
    # same serial, same issuer name hash would still differ by key hash
    leaf_ours, _ = pki.leaf()
    assert responder.serves(parse_request(_request(leaf_ours, pki.ca)).cert_ids[0])


def test_error_responses_are_bare_status():
    parsed = ocsp.load_der_ocsp_response(error_response(ResponseStatus.unauthorized))
    assert parsed.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    parsed = ocsp.load_der_ocsp_response(error_response(ResponseStatus.malformed_request))
    assert parsed.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_get_path_decoding_accepts_client_variants(pki_and_responder):
    pki, _ = pki_and_responder
    leaf, _ = pki.leaf()
    der = _request(leaf, pki.ca, nonce=b"\xff\xfe" * 8)
    standard = base64.b64encode(der).decode()
    variants = [
        standard,
        quote(standard, safe=""),
        base64.urlsafe_b64encode(der).decode().rstrip("="),
        standard.rstrip("="),
    ]
    for variant in variants:
        assert decode_get_path(variant) == der, variant
    with pytest.raises(MalformedRequest):
        decode_get_path("not*base64!")


def test_several_cert_ids_get_one_answer_each(pki_and_responder):
    pki, responder = pki_and_responder
    first, _ = pki.leaf()
    second, _ = pki.leaf()
    request = asn1_ocsp.OCSPRequest.load(_request(first, pki.ca))
    other = asn1_ocsp.OCSPRequest.load(_request(second, pki.ca, hashes.SHA256()))
    request["tbs_request"]["request_list"].append(other["tbs_request"]["request_list"][0])
    parsed_request = parse_request(request.dump())
    assert [c.serial for c in parsed_request.cert_ids] == [
        first.serial_number,
        second.serial_number,
    ]
    der = responder.respond(
        [
            (parsed_request.cert_ids[0], CertificateStatus.good()),
            (
                parsed_request.cert_ids[1],
                CertificateStatus.revoked(NOW, RevocationReason.superseded),
            ),
        ],
        produced_at=NOW,
        next_update=NOW + HOUR,
    )
    responses = list(ocsp.load_der_ocsp_response(der).responses)
    assert [r.certificate_status for r in responses] == [
        ocsp.OCSPCertStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED,
    ]
    assert isinstance(responses[1].hash_algorithm, hashes.SHA256)


@pytest.fixture(scope="module")
def seed_request(pki_and_responder) -> bytes:
    pki, _ = pki_and_responder
    return _request(pki.leaf()[0], pki.ca, nonce=b"\x09" * 16)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_requests_parse_or_are_malformed_never_crash(pki_and_responder, seed_request, data):
    _, responder = pki_and_responder
    original = bytearray(seed_request)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(original) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            original[position] = data.draw(st.integers(0, 255))
        elif action == "drop":
            del original[position]
        else:
            original.insert(position, data.draw(st.integers(0, 255)))
    try:
        request = parse_request(bytes(original))
    except MalformedRequest:
        return
    # whatever parsed can be answered (as the status layer would)
    responder.respond(
        [(cert_id, CertificateStatus.unknown()) for cert_id in request.cert_ids],
        produced_at=NOW,
        next_update=NOW + HOUR,
        nonce_extension=request.nonce_extension,
    )


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fast_reader_agrees_with_asn1crypto(seed_request, pki_and_responder, data):
    """Whatever the direct reader accepts, asn1crypto reads the same way (or both refuse)."""
    from ca.rfc6960 import _parse_common, _parse_with_asn1crypto, _Unusual

    pki, _ = pki_and_responder
    seeds = [seed_request, _request(pki.leaf()[0], pki.ca, hashes.SHA256())]
    original = bytearray(data.draw(st.sampled_from(seeds)))
    for _ in range(data.draw(st.integers(0, 3))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    raw = bytes(original)
    try:
        fast = _parse_common(raw)
    except _Unusual:
        return
    except MalformedRequest:
        with pytest.raises(MalformedRequest):
            _parse_with_asn1crypto(raw)
        return
    assert fast == _parse_with_asn1crypto(raw)


def test_fast_reader_takes_what_clients_send(pki_and_responder):
    from ca.rfc6960 import _parse_common

    pki, _ = pki_and_responder
    leaf, _ = pki.leaf()
    for algorithm in (hashes.SHA1(), hashes.SHA256()):
        for nonce in (None, b"\x05" * 16):
            raw = _request(leaf, pki.ca, algorithm, nonce)
            cert_ids, parsed_nonce = _parse_common(raw)
            assert cert_ids[0].serial == leaf.serial_number
            assert (parsed_nonce is None) == (nonce is None)
