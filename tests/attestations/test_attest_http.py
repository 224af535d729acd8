"""The attestation doors of the running app: issue, share, check by code, verify, revoke.

The signer certificate comes from the app's own CA (service-signing profile) on
first use; a holder is a person logged in through an OIDC grant at level
substantial; receivers trust only the root.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import httpx
import pytest
from attest_helpers import root_of
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlmodel import col
from typer.testing import CliRunner

from idp.attestations.provision import default_path
from idp.attestations.rfc9901 import SdJwt
from idp.attestations.verifier import AttestationVerifier
from idp.cli.attest import attest_app
from idp.clients import create_client
from idp.oauth.rfc9068 import issue_access_token
from idp.storage.models import AuditEntry, Client
from idp.storage.oidc import OidcGrant
from idp.tracking import new_tracking_code
from policies.assurance import LOW, SUBSTANTIAL


def login_token(app, national_code: str, acr: str = SUBSTANTIAL, service="demo-tax-portal"):
    """An access token as the OIDC token endpoint issues it after a login (RFC 9068 + grant)."""
    hoviyat = app.state.hoviyat
    grant_id = secrets.token_urlsafe(16)
    with hoviyat.db.session() as session:
        # The agency app the citizen logged in through: a token's client must exist.
        if session.get(Client, "demo-tax") is None:
            create_client(
                session,
                hoviyat.secrets.client_secret_key,
                client_id="demo-tax",
                name="demo-tax",
                service_code=service,
                grant_types=["authorization_code"],
            )
        session.add(
            OidcGrant(
                id=grant_id,
                client_id="demo-tax",
                national_code=national_code,
                scope=["openid"],
                acr=acr,
                auth_time=datetime.now(UTC),
                tracking_code=new_tracking_code(),
            )
        )
    return issue_access_token(
        hoviyat.keyring,
        issuer=hoviyat.settings.issuer,
        client_id="demo-tax",
        subject="pairwise-subject",
        scope=["openid"],
        lifetime=300,
        extra_claims={"gid": grant_id, "acr": acr, "service_code": service},
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue(app_client, token, **body):
    payload = {"purpose": "opening a bank account", "facts": ["given_name", "alive"], **body}
    return app_client.post("/v1/attestations", json=payload, headers=bearer(token))


def test_issue_with_ca_certificate_verifies_offline_against_the_root(
    ca_ready, app_client, representative
):
    person, entity = representative
    token = login_token(ca_ready, person.national_code)
    response = issue(
        app_client,
        token,
        facts=["alive", "representation"],
        age_over=[18],
        entity_national_id=entity.national_id,
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["verification_code"].count("-") == 3
    verifier = AttestationVerifier([root_of(ca_ready)])
    for form in ("jwt", "sd_jwt"):
        report = verifier.verify(answer[form])
        assert report.valid, report.render("en")
        facts = dict(report.facts)
        assert facts["age_over_18"] is True
        assert facts["representation"]["national_id"] == entity.national_id
        assert report.signer and "Hoviyat attestations" in report.signer
    assert person.national_code not in str(report.claims)
    # The root a receiver needs is the one the CA publishes.
    published = app_client.get("/ca/root.crt")
    assert published.status_code == 200
    assert published.content == root_of(ca_ready).public_bytes(serialization.Encoding.DER)


def test_low_level_login_is_refused(ca_ready, app_client, representative):
    person, _ = representative
    response = issue(app_client, login_token(ca_ready, person.national_code, acr=LOW))
    assert response.status_code == 403
    assert response.json()["type"].endswith("/insufficient-assurance")


def test_policy_without_attestations_is_refused(ca_ready, app_client, representative):
    person, _ = representative
    token = login_token(ca_ready, person.national_code, service="demo-match-only")
    response = issue(app_client, token)
    assert response.status_code == 403
    assert response.json()["type"].endswith("/operation-not-allowed")


def test_back_office_token_is_not_a_holder(ca_ready, app_client, bank_token):
    response = issue(app_client, bank_token)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"facts": ["shoe_size"]}, "invalid-attestation-request"),
        ({"validity_days": 400}, "validity-too-long"),
        ({"facts": ["representation"], "entity_national_id": "12345678901"}, "invalid-identifier"),
        ({"holder_jwk": {"kty": "EC", "crv": "P-256", "x": "AA"}}, "invalid-attestation-request"),
    ],
)
def test_bad_requests_are_problems_and_change_nothing(
    ca_ready, app_client, representative, body, slug
):
    person, _ = representative
    response = issue(app_client, login_token(ca_ready, person.national_code), **body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/" + slug)
    listed = app_client.get(
        "/v1/attestations", headers=bearer(login_token(ca_ready, person.national_code))
    )
    assert listed.json()["attestations"] == []


def test_clerk_checks_by_code_and_sees_the_facts(ca_ready, app_client, representative):
    person, _ = representative
    answer = issue(app_client, login_token(ca_ready, person.national_code)).json()
    page = app_client.get("/attestations/check", params={"code": answer["verification_code"]})
    assert page.status_code == 200
    assert 'data-valid="true"' in page.text
    assert person.first_name in page.text
    assert 'lang="fa"' in page.text and 'dir="rtl"' in page.text
    assert page.headers["cache-control"] == "no-store"
    # Typed by hand: lower case, no dashes, Persian digits where there are digits.
    typed = answer["verification_code"].replace("-", "").lower()
    typed = typed.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    posted = app_client.post("/attestations/check", data={"code": typed, "lang": "en"})
    assert 'data-valid="true"' in posted.text and "This attestation is valid" in posted.text
    png = app_client.get(f"/attestations/qr/{answer['verification_code']}.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    svg = app_client.get(f"/attestations/qr/{answer['verification_code']}.svg")
    assert svg.status_code == 200 and b"<svg" in svg.content


def test_unknown_code_is_told_plainly(ca_ready, app_client):
    page = app_client.get("/attestations/check", params={"code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"})
    assert page.status_code == 404 and "data-valid" not in page.text
    bad = app_client.get("/attestations/check", params={"code": "short"})
    assert bad.status_code == 400


def test_holder_shares_a_subset_and_the_clerk_sees_only_that(ca_ready, app_client, representative):
    person, _ = representative
    token = login_token(ca_ready, person.national_code)
    answer = issue(app_client, token, facts=["given_name", "family_name", "alive"]).json()
    subset = SdJwt.parse(answer["sd_jwt"]).select(["alive"]).serialize()
    shared = app_client.post(
        "/v1/attestations/shares", json={"presentation": subset}, headers=bearer(token)
    )
    assert shared.status_code == 201, shared.text
    page = app_client.get(
        "/attestations/check", params={"code": shared.json()["verification_code"]}
    )
    assert 'data-valid="true"' in page.text
    assert 'data-fact="alive"' in page.text
    assert person.first_name not in page.text and person.last_name not in page.text
    # Someone else cannot get a code for this holder's attestation.
    stranger = login_token(ca_ready, "0499370899")
    refused = app_client.post(
        "/v1/attestations/shares", json={"presentation": subset}, headers=bearer(stranger)
    )
    assert refused.status_code == 404


def test_revocation_reaches_the_status_list_and_every_verifier(
    ca_ready, app_client, representative, bank_token
):
    person, _ = representative
    token = login_token(ca_ready, person.national_code)
    answer = issue(app_client, token).json()
    before = app_client.post(
        "/v1/attestations/verify", json={"attestation": answer["jwt"]}, headers=bearer(bank_token)
    )
    assert before.status_code == 200 and before.json()["valid"] is True
    assert before.json()["status"] == "valid"

    revoked = app_client.post(
        f"/v1/attestations/{answer['id']}/revoke", json={"reason": "lost"}, headers=bearer(token)
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]

    after = app_client.post(
        "/v1/attestations/verify",
        json={"attestation": answer["sd_jwt"]},
        headers=bearer(bank_token),
    )
    assert after.json()["valid"] is False and after.json()["failed_check"] == "revoked"
    page = app_client.get("/attestations/check", params={"code": answer["verification_code"]})
    assert 'data-valid="false"' in page.text and 'data-outcome="failed"' in page.text

    # A receiver outside Hoviyat fetches the published list over HTTP.
    status_uri = f"/v1/attestations/status-lists/{answer['status']['list']}"
    published = app_client.get(status_uri)
    assert published.headers["content-type"] == "application/statuslist+jwt"
    assert published.headers["access-control-allow-origin"] == "*"
    outside = AttestationVerifier(
        [root_of(ca_ready)], status_fetcher=lambda uri: app_client.get(uri).text
    )
    report = outside.verify(answer["jwt"], check_status=True)
    assert report.failed_check == "revoked"

    with ca_ready.state.hoviyat.db.session() as session:
        events = (
            session.execute(
                select(col(AuditEntry.event_type)).where(
                    col(AuditEntry.event_type).like("attestation.%")
                )
            )
            .scalars()
            .all()
        )
    assert {"attestation.issued", "attestation.revoked", "attestation.verified"} <= set(events)


def test_key_binding_required_by_a_back_office(ca_ready, app_client, representative, bank_token):
    person, _ = representative
    holder = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    token = login_token(ca_ready, person.national_code)
    answer = issue(app_client, token, holder_jwk=holder.as_dict(private=False)).json()
    presented = (
        SdJwt.parse(answer["sd_jwt"])
        .select(["alive"])
        .bind(
            holder,
            audience="demo-bank",
            nonce="n-123",
            issued_at=int(datetime.now(UTC).timestamp()),
        )
    )
    ask = {"require_key_binding": True, "audience": "demo-bank", "nonce": "n-123"}
    good = app_client.post(
        "/v1/attestations/verify",
        json={"attestation": presented.serialize(), **ask},
        headers=bearer(bank_token),
    )
    assert good.json()["valid"] is True, good.json()
    unbound = app_client.post(
        "/v1/attestations/verify",
        json={"attestation": answer["sd_jwt"], **ask},
        headers=bearer(bank_token),
    )
    assert unbound.json()["failed_check"] == "kb_missing"
    no_nonce = app_client.post(
        "/v1/attestations/verify",
        json={"attestation": answer["sd_jwt"], "require_key_binding": True},
        headers=bearer(bank_token),
    )
    assert no_nonce.status_code == 400


def test_signer_is_obtained_once_and_reused(ca_ready, app_client, representative):
    person, _ = representative
    token = login_token(ca_ready, person.national_code)
    first = issue(app_client, token).json()
    path = default_path(ca_ready.state.hoviyat.settings.data_dir)
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    ca_ready.state.hoviyat_attestations = None  # as a restarted worker would
    second = issue(app_client, token).json()
    from idp.attestations.rfc9901 import unverified_header

    assert unverified_header(first["jwt"])["x5c"] == unverified_header(second["jwt"])["x5c"]


def test_cli_checks_status_online_against_the_live_server(
    ca_ready, live_server, representative, tmp_path
):
    person, _ = representative
    token = login_token(ca_ready, person.national_code)
    with httpx.Client(base_url=live_server.url) as client:
        answer = issue(client, token).json()
        root = tmp_path / "root.pem"
        root.write_bytes(root_of(ca_ready).public_bytes(serialization.Encoding.PEM))
        args = ["verify", answer["jwt"], "--root", str(root), "--status-online", "--lang", "en"]
        good = CliRunner().invoke(attest_app, args)
        assert good.exit_code == 0, good.output
        client.post(
            f"/v1/attestations/{answer['id']}/revoke", json={"reason": "x"}, headers=bearer(token)
        )
    revoked = CliRunner().invoke(attest_app, args)
    assert revoked.exit_code == 1
    assert "Revocation status: FAILED" in revoked.output


def test_admin_revokes_any_attestation_and_strangers_none(
    ca_ready, app_client, representative, admin_token
):
    person, _ = representative
    answer = issue(app_client, login_token(ca_ready, person.national_code)).json()
    path = f"/v1/attestations/{answer['id']}/revoke"
    stranger = login_token(ca_ready, "0499370899")
    refused = app_client.post(path, json={"reason": "x"}, headers=bearer(stranger))
    assert refused.status_code == 404
    done = app_client.post(path, json={"reason": "court order"}, headers=bearer(admin_token))
    assert done.status_code == 200, done.text
    assert done.json()["revoked_at"]


def test_attack_citizen_token_of_a_disabled_agency_app_keeps_issuing_attestations_is_refused(
    ca_ready, app_client, representative
):
    # An administrator disables the agency app; the login tokens it already holds
    # must stop working too, not only its client-credentials tokens.
    person, _entity = representative
    token = login_token(ca_ready, person.national_code)
    assert issue(app_client, token).status_code == 201
    with ca_ready.state.hoviyat.db.session() as session:
        session.get(Client, "demo-tax").disabled = True
    time.sleep(1.2)  # ClientDirectory re-reads a client at most 1 s after caching it
    refused = issue(app_client, token)
    assert refused.status_code == 401, refused.text
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_before_ca_init_the_attestation_doors_answer_503_not_500(app_client, bank_token):
    """No CA yet (``hoviyat ca init`` not run): the service is not set up, not broken."""
    response = app_client.post(
        "/v1/attestations/verify", json={"attestation": "a" * 20}, headers=bearer(bank_token)
    )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["Retry-After"]) > 0
    problem = response.json()
    assert problem["type"].endswith("/attestations-not-initialised")
    assert "hoviyat ca init" in problem["detail"]
    status_list = app_client.get("/v1/attestations/status-lists/1")
    assert status_list.status_code == 503
