"""One signing path per object type, whatever holds the key: files sign directly,
an HSM signs the to-be-signed bytes of a throwaway-key draft. Both must verify.
(Certificates and CSRs from both backends are verified in test_issuance/test_hierarchy.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509

from idp.pki.hierarchy import Hierarchy

NOW = datetime.now(UTC).replace(microsecond=0)


def test_crl_signed_by_either_backend_verifies(hierarchy: Hierarchy) -> None:
    ca = hierarchy.issuing_ca("persons")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(NOW)
        .next_update(NOW + timedelta(days=1))
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    crl = ca.sign_crl(builder)
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
