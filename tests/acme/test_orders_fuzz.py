"""The order side's parsers of outside bytes, fuzzed: a newOrder payload, a finalize CSR, a
revokeCert certificate and reason. Whatever arrives is a clear ACME problem or a checked
value, never another exception (which would be a 500)."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from orders_support import account, csr_der

from idp.acme.finalize import check_csr_names
from idp.acme.finalize import csr_der as finalize_csr
from idp.acme.order_requests import parse_order_request
from idp.acme.problems import AcmeProblem
from idp.acme.revocation import SUBSCRIBER_REASONS, _certificate, _reason
from idp.acme.settings import AcmeSettings

SETTINGS = AcmeSettings(max_identifiers=5)
OFFERED = ("tls-server", "tls-server-short")
WHO = account()
NAMES = ["www.tax.example.com", "*.tax.example.com"]
VALID_CSR, _ = csr_der(tuple(NAMES))
VERSION_AT = VALID_CSR.index(b"\x02\x01\x00") + 2  # CertificationRequestInfo's version, v1 (0)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
identifiers = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["dns", "ip", "email", ""]) | json_values,
            "value": st.text(max_size=80)
            | st.sampled_from(["*.tax.example.com", "xn--mgba3a4f16a.ir", "10.0.0.1", "a..b"]),
        }
    )
    | json_values,
    max_size=7,
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@given(
    payload=st.fixed_dictionaries(
        {"identifiers": identifiers},
        optional={
            "profile": st.sampled_from(["tls-server", "x"]) | json_values,
            "replaces": json_values,
            "notBefore": json_values,
        },
    )
    | json_values
)
@example({"identifiers": [{"type": "dns", "value": "www.tax.example.com"}] * 2})
@example({"identifiers": [{"type": "dns", "value": "WWW.tax.example.com."}] * 2})
def test_new_order_payload_is_refused_clearly_or_checked(payload: Any) -> None:
    if not isinstance(payload, dict):
        payload = {"identifiers": payload}
    try:
        wanted = parse_order_request(payload, SETTINGS, OFFERED)
    except AcmeProblem as problem:
        assert problem.status == 400 and problem.detail
        return
    assert wanted.names and len(wanted.names) <= SETTINGS.max_identifiers
    assert len(set(wanted.names)) == len(wanted.names)  # a name asked twice is one name
    assert all(name == name.lower() and name.isascii() for name in wanted.names)
    assert wanted.profile in OFFERED


@given(
    csr=st.binary(max_size=600).map(_b64)
    | st.text(max_size=200)
    | st.integers(0, len(VALID_CSR) - 1).flatmap(
        lambda at: st.integers(1, 255).map(
            lambda flip: _b64(VALID_CSR[:at] + bytes([VALID_CSR[at] ^ flip]) + VALID_CSR[at + 1 :])
        )
    )
)
@example(csr=_b64(VALID_CSR[:VERSION_AT] + b"\x01" + VALID_CSR[VERSION_AT + 1 :]))
def test_finalize_csr_is_refused_clearly_or_names_exactly_the_order(csr: str) -> None:
    try:
        check_csr_names(finalize_csr({"csr": csr}), NAMES, WHO)
    except AcmeProblem as problem:
        assert problem.error in ("badCSR", "malformed")
        return
    # Accepted: only a CSR whose self-signature still verifies over exactly these names.


@given(
    payload=st.fixed_dictionaries({"certificate": st.binary(max_size=400).map(_b64) | json_values})
    | json_values
)
def test_revoke_certificate_member_is_refused_clearly(payload: Any) -> None:
    try:
        _certificate(payload if isinstance(payload, dict) else None)
    except AcmeProblem as problem:
        assert problem.error == "malformed"


@given(reason=json_values)
def test_revoke_reason_is_a_subscriber_reason_or_refused(reason: Any) -> None:
    try:
        decided = _reason({"reason": reason})
    except AcmeProblem as problem:
        assert problem.error == "badRevocationReason"
        return
    assert decided in SUBSCRIBER_REASONS and decided.value == reason
