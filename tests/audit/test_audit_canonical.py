"""RFC 8785 canonical bytes of audit entries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.audit.canonical import (
    CanonicalizationError,
    _serialize,
    canonicalize,
    entry_bytes,
    entry_document,
)


def test_rfc8785_sorts_by_utf16_and_prints_numbers_as_ecmascript() -> None:
    # RFC 8785 §3.2.3's sorting example: UTF-16 code units, not code points.
    value = {
        "\u20ac": "Euro",
        "\r": "CR",
        "\ufb33": "Hebrew",
        "1": "One",
        "\U0001f600": "smile",
        "\u0080": "Control",
        "\u00f6": "o-umlaut",
    }
    keys = [k for k in canonicalize(value).decode().strip("{}").split(",")]
    assert [k.split(":")[0] for k in keys] == [
        '"\\r"',
        '"1"',
        '"\u0080"',
        '"\u00f6"',
        '"\u20ac"',
        '"\U0001f600"',
        '"\ufb33"',
    ]
    assert canonicalize([1e21, 1e-7, 0.000001, 123.0, -0.0, 5e-324, 1.5]) == (
        b"[1e+21,1e-7,0.000001,123,0,5e-324,1.5]"
    )
    with pytest.raises(CanonicalizationError):
        canonicalize({"x": float("nan")})


def test_entry_bytes_are_stable_and_persian_text_stays_utf8() -> None:
    document = entry_document(
        leaf_index=7,
        created_at=datetime(2026, 11, 30, 1, 2, 3, 456, tzinfo=UTC),
        tracking_code="01HZZ",
        event_type="verification",
        actor_type="client",
        actor_id="bank-app",
        service_code="demo-bank-kyc",
        legal_basis="ماده ۶",
        operation="person.match",
        subject_hash=None,
        outcome="match",
        detail={"b": 1, "a": [True, None]},
    )
    assert (
        entry_bytes(document)
        == (
            '{"actor_id":"bank-app","actor_type":"client","created_at":"2026-11-30T01:02:03.000456Z",'
            '"detail":{"a":[true,null],"b":1},"event_type":"verification","leaf_index":7,'
            '"legal_basis":"ماده ۶","operation":"person.match","outcome":"match",'
            '"service_code":"demo-bank-kyc","subject_hash":null,"tracking_code":"01HZZ","v":1}'
        ).encode()
    )
    with pytest.raises(CanonicalizationError, match="members"):
        entry_bytes({**document, "extra": 1})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False,
    allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(json_values)
def test_fast_path_equals_the_exact_serializer(value: object) -> None:
    try:
        exact = "".join(_serialize(value)).encode("utf-8")
    except CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            canonicalize(value)
        return
    assert canonicalize(value) == exact


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=4), st.text(max_size=8))
def test_entry_fast_path_equals_the_exact_serializer(detail: dict, text: str) -> None:
    document = entry_document(
        leaf_index=3, created_at=datetime(2026, 1, 1, tzinfo=UTC), tracking_code=text,
        event_type="login", actor_type="citizen", actor_id=None, service_code=None,
        legal_basis=text, operation=None, subject_hash=None, outcome="ok", detail=detail,
    )  # fmt: skip
    try:
        exact = "".join(_serialize(document)).encode("utf-8")
    except CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            entry_bytes(document)
        return
    assert entry_bytes(document) == exact
