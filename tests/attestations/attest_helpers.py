"""Test data shared by the attestation tests: a citizen, an entity, and a signing shortcut."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from joserfc.jwk import ECKey

from idp.attestations.claims import PERSON_FACTS, FactSelection
from idp.attestations.issuer import AttestationIssuer, AttestationRequest, Issued
from idp.attestations.provision import default_path, load_bundle
from verifiers.registry.base import LegalEntity, Person, Representative

ISSUER = "https://hoviyat.test"
SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"
NOW = datetime.now(UTC).replace(microsecond=0)


def now_seconds() -> int:
    """The clock now, for what verification measures against its own clock (key-binding
    iat, status-list ttl): NOW is taken at import and goes stale in a long test run."""
    return int(time.time())


CITIZEN = Person(
    national_code="0499370899",
    first_name="زهرا",
    last_name="رضایی",
    father_name="علی",
    birth_date=date(1990, 8, 3),
    gender="female",
    alive=True,
    national_card_serial="1A23456789",
    postal_code="1193653471",
)
ENTITY = LegalEntity(
    national_id="10380284790",
    name="شرکت نمونه",
    registration_number="12345",
    registration_date=date(2001, 1, 1),
    registering_body="تهران",
    status="active",
    representatives=(
        Representative("0499370899", "مدیرعامل", "امضای منفرد", date(2020, 1, 1), None),
    ),
)
ALL_PERSON_FACTS = FactSelection.of(PERSON_FACTS)


def sign(
    issuer: AttestationIssuer,
    selection: FactSelection = ALL_PERSON_FACTS,
    *,
    holder: ECKey | None = None,
    issued_at: datetime = NOW,
    validity: timedelta = timedelta(days=30),
    recipient: str | None = None,
    entity: LegalEntity | None = None,
) -> Issued:
    request = AttestationRequest(
        purpose="opening a bank account",
        selection=selection,
        recipient=recipient,
        holder_jwk=holder.as_dict(private=False) if holder else None,
        validity=validity,
    )
    return issuer.sign(
        CITIZEN,
        request,
        level=SUBSTANTIAL,
        attestation_id="5f0c6d3e-0000-4000-8000-000000000001",
        tracking_code="01JTESTTRACKINGCODE0000000",
        status=(1, 7),
        issued_at=issued_at,
        entity=entity,
    )


def root_of(app):
    hoviyat = app.state.hoviyat
    bundle = load_bundle(
        default_path(hoviyat.settings.data_dir), hoviyat.secrets.key_encryption_key
    )
    assert bundle is not None
    return bundle.root
