"""Mutual TLS for OAuth clients (RFC 8705), over the app's ASGI transport.

The certificate reaches Hoviyat as the trusted proxy forwards it (the
``X-Client-Certificate`` header from the proxy's address; tests/oidc/
test_client_certificate_header.py and tests/deploy cover the proxy itself, and
test_mtls_nginx.py the whole path through a real nginx). Client certificates
are issued by Hoviyat's own organisations CA (profile ``oauth-client``) to
active legal entities of the synthetic registry. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from mtls_support import (
    CaTemplate,
    ClientCertificate,
    active_entities,
    issue_client_certificate,
    make_template,
    pki_on,
    self_signed,
)
from oidc_support import RelyingParty, authorization_params, code_for, log_in, pkce_pair

from ca.revocation import RevocationReason
from idp.app import create_app
from idp.clients import create_client
from idp.oidc.registration import RegistrationError, oidc_attributes
from idp.pki.registration import Pki
from idp.pki.revocation import Actor, revoke
from idp.settings import Settings
from idp.storage.engine import Database
from verifiers.registry.base import Person

PROXY = ("10.20.30.40", 44321)  # the trusted reverse proxy, as the app sees its peer
HEADER = "X-Client-Certificate"
SERVICE = "demo-bank-kyc"  # a back-office policy that may verify persons
REDIRECT_URI = "https://rp.example/callback"


@pytest.fixture(scope="session")
def ca_template(tmp_path_factory: pytest.TempPathFactory) -> CaTemplate:
    return make_template(tmp_path_factory.mktemp("mtls-ca"))


@pytest.fixture
def pki(db: Database, ca_template: CaTemplate, synthetic_registry_path: Path) -> Iterator[Pki]:
    made = pki_on(db, ca_template, synthetic_registry_path)
    yield made


@pytest.fixture
def entities(synthetic_registry_path: Path) -> list[str]:
    found = active_entities(synthetic_registry_path, 2)
    assert len(found) == 2, "the synthetic registry needs two active legal entities"
    return found


@pytest.fixture
def mtls_app(
    hoviyat_settings: Settings, init_report: dict[str, Any], pki: Pki
) -> Iterator[FastAPI]:
    settings = hoviyat_settings.model_copy(update={"trusted_proxies": [PROXY[0]]})
    app = create_app(settings)
    yield app
    app.state.hoviyat.close()


@pytest.fixture
def proxy(mtls_app: FastAPI) -> Iterator[TestClient]:
    """Requests as the trusted proxy forwards them."""
    issuer = mtls_app.state.hoviyat.settings.issuer
    with TestClient(mtls_app, base_url=issuer, client=PROXY, follow_redirects=False) as client:
        yield client


@pytest.fixture
def agency_cert(pki: Pki, entities: list[str]) -> ClientCertificate:
    return issue_client_certificate(pki, entities[0], "tax back office")


def register(
    app: FastAPI,
    client_id: str,
    auth_method: str,
    *,
    subject_dn: str | None = None,
    jwks: dict[str, Any] | None = None,
    bound: bool = True,
    code_flow: bool = False,
    **extra: Any,
) -> None:
    """A client registered through the same checks as ``hoviyat clients create``."""
    attributes = oidc_attributes(
        redirect_uris=[REDIRECT_URI] if code_flow else [],
        post_logout_redirect_uris=[],
        grant_types=["authorization_code", "refresh_token"] if code_flow else [],
        auth_method=auth_method,
        id_token_alg="ES256",
        sector_identifier=None,
        jwks=jwks,
        tls_client_auth_subject_dn=subject_dn,
        tls_client_certificate_bound_access_tokens=bound,
        **extra,
    )
    hoviyat = app.state.hoviyat
    with hoviyat.db.session() as session:
        create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name=f"mTLS {client_id}",
            service_code=SERVICE if not code_flow else "demo-tax-portal",
            client_id=client_id,
            with_secret=False,
            **attributes,
        )


def x5t(cert: ClientCertificate) -> str:
    digest = hashlib.sha256(cert.certificate.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def token(
    client: TestClient, client_id: str, cert: ClientCertificate | None, **data: str
) -> httpx.Response:
    headers = {HEADER: cert.header} if cert is not None else {}
    form = {"grant_type": "client_credentials", "client_id": client_id, **data}
    return client.post("/token", data=form, headers=headers)


def verify(
    client: TestClient, access_token: str, cert: ClientCertificate | None, citizen: Person
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access_token}"}
    if cert is not None:
        headers[HEADER] = cert.header
    body = {
        "national_code": citizen.national_code,
        "birth_date": citizen.birth_date.isoformat(),
        "first_name": citizen.first_name,
    }
    return client.post("/v1/persons/verify", json=body, headers=headers)


def refused_client(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert fragment in response.json()["error_description"]


def refused_token(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert fragment in response.text


# --- tls_client_auth (§2.1) and bound tokens (§3) at the verification API ---------------------


def test_client_credentials_with_tls_client_auth_then_verification_with_the_bound_token(
    mtls_app: FastAPI, proxy: TestClient, agency_cert: ClientCertificate, citizen: Person
) -> None:
    register(mtls_app, "tax-mtls", "tls_client_auth", subject_dn=agency_cert.subject_dn)
    answer = token(proxy, "tax-mtls", agency_cert)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"  # RFC 8705 §3: still a bearer-style token type
    assert claims_of(body["access_token"])["cnf"] == {"x5t#S256": x5t(agency_cert)}

    verified = verify(proxy, body["access_token"], agency_cert, citizen)
    assert verified.status_code == 200, verified.text

    introspected = proxy.post(
        "/introspect",
        data={"token": body["access_token"], "client_id": "tax-mtls"},
        headers={HEADER: agency_cert.header},
    )
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True
    assert introspected.json()["cnf"] == {"x5t#S256": x5t(agency_cert)}  # §3.2


def test_discovery_names_the_methods_and_bound_tokens(proxy: TestClient) -> None:
    document = proxy.get("/.well-known/openid-configuration").json()
    assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(
        document["token_endpoint_auth_methods_supported"]
    )
    assert document["tls_client_certificate_bound_access_tokens"] is True


def test_an_unbound_client_gets_a_plain_bearer_token(
    mtls_app: FastAPI, proxy: TestClient, agency_cert: ClientCertificate
) -> None:
    register(mtls_app, "tax-unbound", "tls_client_auth", subject_dn=agency_cert.subject_dn,
             bound=False)  # fmt: skip
    answer = token(proxy, "tax-unbound", agency_cert)
    assert answer.status_code == 200, answer.text
    assert "cnf" not in claims_of(answer.json()["access_token"])


def test_attack_bound_token_without_certificate(
    mtls_app: FastAPI, proxy: TestClient, agency_cert: ClientCertificate, citizen: Person
) -> None:
    """A stolen token, replayed by someone who does not hold the certificate's key."""
    register(mtls_app, "tax-mtls", "tls_client_auth", subject_dn=agency_cert.subject_dn)
    access_token = token(proxy, "tax-mtls", agency_cert).json()["access_token"]
    refused_token(verify(proxy, access_token, None, citizen), "bound to a TLS client certificate")
    refused_token(
        proxy.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"}),
        "bound to a TLS client certificate",
    )


def test_attack_bound_token_with_another_certificate(
    mtls_app: FastAPI,
    proxy: TestClient,
    pki: Pki,
    entities: list[str],
    agency_cert: ClientCertificate,
    citizen: Person,
) -> None:
    """Another valid Hoviyat client certificate (even of the same entity) is not the one."""
    register(mtls_app, "tax-mtls", "tls_client_auth", subject_dn=agency_cert.subject_dn)
    access_token = token(proxy, "tax-mtls", agency_cert).json()["access_token"]
    sibling = issue_client_certificate(pki, entities[0], "tax back office")
    assert sibling.subject_dn == agency_cert.subject_dn
    other = issue_client_certificate(pki, entities[1], "another agency")
    for thief in (sibling, other, self_signed(like=agency_cert.certificate)):
        refused_token(verify(proxy, access_token, thief, citizen), "another TLS client certificate")


def test_attack_certificate_from_another_ca(
    mtls_app: FastAPI, proxy: TestClient, agency_cert: ClientCertificate
) -> None:
    """Same subject, serial, issuer name and extensions, signed by the attacker's own key."""
    register(mtls_app, "tax-mtls", "tls_client_auth", subject_dn=agency_cert.subject_dn)
    forged = self_signed(like=agency_cert.certificate)
    assert forged.certificate.issuer == agency_cert.certificate.issuer
    refused_client(token(proxy, "tax-mtls", forged), "not signed by Hoviyat's organisations CA")


def test_attack_certificate_of_another_hoviyat_ca(
    mtls_app: FastAPI, proxy: TestClient, pki: Pki, entities: list[str]
) -> None:
    """A genuine Hoviyat certificate, but from the infrastructure CA's backoffice profile."""
    infrastructure = issue_client_certificate(pki, entities[0], "back office", "backoffice-client")
    register(mtls_app, "tax-mtls", "tls_client_auth", subject_dn=infrastructure.subject_dn)
    refused_client(token(proxy, "tax-mtls", infrastructure), "organisations CA")


def test_attack_revoked_client_certificate(
    mtls_app: FastAPI, proxy: TestClient, db: Database, agency_cert: ClientCertificate
) -> None:
    register(mtls_app, "tax-mtls", "tls_client_auth", subject_dn=agency_cert.subject_dn)
    assert token(proxy, "tax-mtls", agency_cert).status_code == 200
    revoke(db, agency_cert.certificate.serial_number, RevocationReason.keyCompromise,
           Actor("operator", "operator-1"))  # fmt: skip
    refused_client(token(proxy, "tax-mtls", agency_cert), "revoked")


def test_attack_subject_dn_of_another_client(
    mtls_app: FastAPI,
    proxy: TestClient,
    pki: Pki,
    entities: list[str],
    agency_cert: ClientCertificate,
) -> None:
    """Agency B's genuine certificate does not authenticate agency A's client."""
    register(mtls_app, "agency-a", "tls_client_auth", subject_dn=agency_cert.subject_dn)
    other = issue_client_certificate(pki, entities[1], "agency b")
    register(mtls_app, "agency-b", "tls_client_auth", subject_dn=other.subject_dn)
    refused_client(token(proxy, "agency-a", other), "registered subject DN")
    assert token(proxy, "agency-b", other).status_code == 200


def test_attack_subject_dn_that_only_contains_the_registered_one(
    mtls_app: FastAPI, proxy: TestClient, agency_cert: ClientCertificate
) -> None:
    """A DN registered without the CN: a certificate with more attributes is another name."""
    shorter = ",".join(agency_cert.subject_dn.split(",")[1:])
    assert shorter and shorter in agency_cert.subject_dn
    register(mtls_app, "tax-mtls", "tls_client_auth", subject_dn=shorter)
    refused_client(token(proxy, "tax-mtls", agency_cert), "registered subject DN")


def test_attack_header_from_untrusted_peer(
    mtls_app: FastAPI, agency_cert: ClientCertificate, citizen: Person
) -> None:
    """Someone reaching the application port directly sends what the proxy would."""
    register(mtls_app, "tax-mtls", "tls_client_auth", subject_dn=agency_cert.subject_dn)
    issuer = mtls_app.state.hoviyat.settings.issuer
    with TestClient(mtls_app, base_url=issuer, client=("10.20.30.41", 5000)) as direct:
        refused_client(token(direct, "tax-mtls", agency_cert), "TLS client certificate")
        with TestClient(mtls_app, base_url=issuer, client=PROXY) as proxy:
            access_token = token(proxy, "tax-mtls", agency_cert).json()["access_token"]
        refused_token(verify(direct, access_token, agency_cert, citizen), "bound to a TLS")


def test_attack_no_certificate_and_malformed_certificate(
    mtls_app: FastAPI, proxy: TestClient, agency_cert: ClientCertificate
) -> None:
    register(mtls_app, "tax-mtls", "tls_client_auth", subject_dn=agency_cert.subject_dn)
    refused_client(token(proxy, "tax-mtls", None), "TLS client certificate")
    garbage = proxy.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": "tax-mtls"},
        headers={HEADER: "-----BEGIN%20CERTIFICATE-----garbage"},
    )
    refused_client(garbage, "certificate")


def test_attack_secret_method_client_cannot_switch_to_a_certificate(
    proxy: TestClient, agency_cert: ClientCertificate
) -> None:
    """demo-bank authenticates with its secret: a certificate and its client_id are not enough."""
    answer = token(proxy, "demo-bank", agency_cert)
    refused_client(answer, "client authentication is required")


# --- self_signed_tls_client_auth (§2.2) ------------------------------------------------------


def _jwks(*certs: ClientCertificate) -> dict[str, Any]:
    return {"keys": [ECKey.import_key(c.certificate.public_key()).as_dict() for c in certs]}  # type: ignore[arg-type]


def test_self_signed_tls_client_auth(proxy: TestClient, mtls_app: FastAPI) -> None:
    mine = self_signed("agency self-signed")
    register(mtls_app, "self-signed", "self_signed_tls_client_auth", jwks=_jwks(mine))
    answer = token(proxy, "self-signed", mine)
    assert answer.status_code == 200, answer.text
    assert claims_of(answer.json()["access_token"])["cnf"] == {"x5t#S256": x5t(mine)}


def test_attack_self_signed_certificate_with_an_unregistered_key(
    proxy: TestClient, mtls_app: FastAPI
) -> None:
    mine = self_signed("agency self-signed")
    register(mtls_app, "self-signed", "self_signed_tls_client_auth", jwks=_jwks(mine))
    impostor = self_signed("agency self-signed")  # same names, another key
    refused_client(token(proxy, "self-signed", impostor), "registered keys")


# --- the code flow with tls_client_auth ----------------------------------------------------------


def test_code_flow_with_tls_client_auth_userinfo_and_refresh(
    mtls_app: FastAPI, proxy: TestClient, agency_cert: ClientCertificate, citizen: Person
) -> None:
    register(mtls_app, "rp-mtls", "tls_client_auth", subject_dn=agency_cert.subject_dn,
             code_flow=True)  # fmt: skip
    rp = RelyingParty("rp-mtls", None, REDIRECT_URI)
    verifier, challenge = pkce_pair()
    login = log_in(mtls_app.state.hoviyat.db, citizen.national_code)
    code = code_for(mtls_app, proxy, authorization_params(rp, challenge), login)
    redeemed = proxy.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": "rp-mtls",
        },
        headers={HEADER: agency_cert.header},
    )
    assert redeemed.status_code == 200, redeemed.text
    body = redeemed.json()
    assert claims_of(body["access_token"])["cnf"] == {"x5t#S256": x5t(agency_cert)}
    authorization = {"Authorization": f"Bearer {body['access_token']}"}
    info = proxy.get("/userinfo", headers={**authorization, HEADER: agency_cert.header})
    assert info.status_code == 200, info.text
    refused_token(proxy.get("/userinfo", headers=authorization), "bound to a TLS")

    refreshed = proxy.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": "rp-mtls",
        },
        headers={HEADER: agency_cert.header},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert claims_of(refreshed.json()["access_token"])["cnf"] == {"x5t#S256": x5t(agency_cert)}


# --- registration -------------------------------------------------------------------------------


def test_registration_rules(agency_cert: ClientCertificate) -> None:
    def attributes(**overrides: Any) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "redirect_uris": [],
            "post_logout_redirect_uris": [],
            "grant_types": [],
            "auth_method": "tls_client_auth",
            "id_token_alg": "ES256",
            "sector_identifier": None,
            "tls_client_auth_subject_dn": agency_cert.subject_dn,
        }
        return oidc_attributes(**{**arguments, **overrides})

    assert attributes()["tls_client_auth_subject_dn"] == agency_cert.subject_dn
    with pytest.raises(RegistrationError, match="needs the subject DN"):
        attributes(tls_client_auth_subject_dn=None)
    with pytest.raises(RegistrationError, match="only with tls_client_auth"):
        attributes(auth_method="client_secret_basic")
    with pytest.raises(RegistrationError, match="RFC 4514"):
        attributes(tls_client_auth_subject_dn="CN=a,,garbage=")
    with pytest.raises(RegistrationError, match="jwks"):
        attributes(auth_method="self_signed_tls_client_auth", tls_client_auth_subject_dn=None)
    # FAPI 2.0: mTLS client authentication, and mTLS binding as the sender constraint.
    fapi = attributes(redirect_uris=[REDIRECT_URI], profile="fapi2", id_token_alg="PS256",
                      tls_client_certificate_bound_access_tokens=True)  # fmt: skip
    assert fapi["tls_client_certificate_bound_access_tokens"] is True
    assert fapi["dpop_bound_access_tokens"] is False
    assert fapi["require_pushed_authorization_requests"] is True
    unbound = attributes(redirect_uris=[REDIRECT_URI], profile="fapi2", id_token_alg="PS256")
    assert unbound["dpop_bound_access_tokens"] is True  # never an unconstrained fapi2 client


def test_admin_api_registers_a_tls_client_auth_client(
    proxy: TestClient, demo_clients: dict[str, str], agency_cert: ClientCertificate
) -> None:
    admin = proxy.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-admin", demo_clients["demo-admin"]),
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {admin}"}
    body = {
        "name": "Tax back office",
        "service_code": SERVICE,
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": agency_cert.subject_dn,
        "tls_client_certificate_bound_access_tokens": True,
    }
    created = proxy.post("/v1/admin/clients", json=body, headers=headers)
    assert created.status_code == 201, created.text
    client = created.json()
    assert client["client_secret"] is None  # the certificate is the credential
    assert client["tls_client_auth_subject_dn"] == agency_cert.subject_dn
    assert client["tls_client_certificate_bound_access_tokens"] is True
    assert token(proxy, client["client_id"], agency_cert).status_code == 200

    without_dn = {**body, "tls_client_auth_subject_dn": None}
    refused = proxy.post("/v1/admin/clients", json=without_dn, headers=headers)
    assert refused.status_code == 422, refused.text
    assert "subject DN" in refused.json()["detail"]


def test_fapi2_client_with_tls_client_auth_and_certificate_bound_tokens(
    mtls_app: FastAPI, proxy: TestClient, agency_cert: ClientCertificate, citizen: Person
) -> None:
    """FAPI 2.0 §5.3.1.1 / §5.3.2.1 with mutual TLS for both client authentication and the
    sender constraint: PAR and /token with the certificate, no DPoP, a bound token."""
    register(mtls_app, "rp-fapi-mtls", "tls_client_auth", subject_dn=agency_cert.subject_dn,
             code_flow=True, profile="fapi2")  # fmt: skip
    rp = RelyingParty("rp-fapi-mtls", None, REDIRECT_URI)
    verifier, challenge = pkce_pair()
    with_cert = {HEADER: agency_cert.header}
    without_cert = proxy.post("/par", data=authorization_params(rp, challenge))
    refused_client(without_cert, "TLS client certificate")
    pushed = proxy.post("/par", data=authorization_params(rp, challenge), headers=with_cert)
    assert pushed.status_code == 201, pushed.text
    login = log_in(mtls_app.state.hoviyat.db, citizen.national_code)
    params = {"client_id": rp.client_id, "request_uri": pushed.json()["request_uri"]}
    code = code_for(mtls_app, proxy, params, login)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": rp.client_id,
    }
    other = self_signed(like=agency_cert.certificate)
    refused_client(proxy.post("/token", data=form, headers={HEADER: other.header}), "CA")
    issued = proxy.post("/token", data=form, headers=with_cert)
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "Bearer"
    assert claims_of(issued.json()["access_token"])["cnf"] == {"x5t#S256": x5t(agency_cert)}
