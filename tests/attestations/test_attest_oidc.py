"""End to end with a real OIDC client: an agency app (authlib) logs a citizen in through
/authorize and /token on a live server, then asks for an attestation with the access token.

The browser's leg stops where the login pages take over: the interaction row is filled
as the login pages fill it (the contract between login pages and /authorize).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import httpx
from attest_helpers import root_of
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from idp.attestations.verifier import AttestationVerifier
from idp.clients import create_client
from idp.login.sessions import cookie_name, start_session
from idp.storage.oidc import OidcInteraction
from idp.tracking import new_tracking_code
from policies.assurance import LOW, SUBSTANTIAL

REDIRECT_URI = "https://agency.example/callback"


def _agency_app(app) -> tuple[str, str]:
    hoviyat = app.state.hoviyat
    client_id = f"agency-{secrets.token_hex(3)}"
    with hoviyat.db.session() as session:
        created = create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name="Agency portal",
            service_code="demo-tax-portal",  # its policy allows attestations.request
            client_id=client_id,
            grant_types=["authorization_code"],
            redirect_uris=[REDIRECT_URI],
        )
    return client_id, str(created.client_secret)


def _login_token(app, live_url: str, national_code: str, acr: str) -> str:
    """The access token an agency app gets after the citizen logs in and consents."""
    hoviyat = app.state.hoviyat
    client_id, secret = _agency_app(app)
    with hoviyat.db.session() as session:
        login, cookie = start_session(
            session,
            national_code=national_code,
            acr=acr,
            amr=["kba", "sms", "otp"] if acr != LOW else ["kba"],
            tracking_code=new_tracking_code(),
            ttl_seconds=600,
        )
        login_id = login.id
    verifier = secrets.token_urlsafe(48)
    agency = OAuth2Client(
        client_id, secret, scope="openid", redirect_uri=REDIRECT_URI, base_url=live_url
    )
    url, _state = agency.create_authorization_url(
        f"{live_url}/authorize",
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
        nonce=secrets.token_urlsafe(8),
    )
    with httpx.Client(cookies={cookie_name(hoviyat.settings): cookie}) as browser:
        to_login = browser.get(url)
        assert to_login.status_code == 302, to_login.text
        interaction_id = httpx.URL(to_login.headers["location"]).params["interaction"]
        with hoviyat.db.session() as session:  # what the login pages write when done
            row = session.get(OidcInteraction, interaction_id)
            row.session_id, row.acr, row.amr = login_id, acr, ["kba", "sms", "otp"]
            row.auth_time = row.completed_at = datetime.now(UTC)
            row.consent_granted = True
            session.add(row)
        back = browser.get(f"{live_url}/authorize/complete", params={"interaction": interaction_id})
        assert back.status_code == 302, back.text
    token = agency.fetch_token(
        f"{live_url}/token", authorization_response=back.headers["location"], code_verifier=verifier
    )
    agency.close()
    return str(token["access_token"])


def test_agency_app_gets_an_attestation_for_a_consenting_citizen(
    ca_ready, live_server, representative
):
    person, _ = representative
    token = _login_token(ca_ready, live_server.url, person.national_code, SUBSTANTIAL)
    with httpx.Client(base_url=live_server.url) as api:
        answer = api.post(
            "/v1/attestations",
            json={"purpose": "tax file", "facts": ["given_name", "family_name"]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 201, answer.text
    report = AttestationVerifier([root_of(ca_ready)]).verify(answer.json()["sd_jwt"])
    assert report.valid, report.render("en")
    assert dict(report.facts) == {"given_name": person.first_name, "family_name": person.last_name}


def test_low_level_oidc_login_is_refused(ca_ready, live_server, representative):
    person, _ = representative
    token = _login_token(ca_ready, live_server.url, person.national_code, LOW)
    with httpx.Client(base_url=live_server.url) as api:
        answer = api.post(
            "/v1/attestations",
            json={"purpose": "tax file", "facts": ["alive"]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("/insufficient-assurance")
