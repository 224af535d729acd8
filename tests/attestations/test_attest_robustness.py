"""Whatever a receiver is handed, the verifier answers with a report and never raises."""

from __future__ import annotations

import orjson
from attest_helpers import sign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.attestations.rfc9901 import SdJwt, b64url

TOKEN_ALPHABET = st.sampled_from("AZaz09-_.~=+/ \n")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(min_size=0, max_size=300) | st.text(TOKEN_ALPHABET, max_size=300))
def test_arbitrary_text_gets_a_report(verifier, text):
    report = verifier.verify(text)
    assert not report.valid
    assert report.failed_check


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    junk=st.recursive(
        st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_junk_disclosures_are_rejected_by_name(attestation_issuer, verifier, junk):
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    planted = SdJwt(issued.jwt, (*issued.disclosures, b64url(orjson.dumps(junk))), None)
    report = verifier.verify(planted.serialize())
    assert not report.valid
    assert report.failed_check in {"disclosure_malformed", "disclosure_unreferenced", "format"}


def test_non_ascii_disclosure_is_a_format_failure(attestation_issuer, verifier):
    issued = SdJwt.parse(sign(attestation_issuer).sd_jwt)
    token = issued.jwt + "~" + "~".join(issued.disclosures) + "~WyJzYWx0IiwgImEiLCAiYiJdé~"
    assert verifier.verify(token).failed_check == "format"
    assert verifier.verify(issued.jwt + "é").failed_check == "format"
