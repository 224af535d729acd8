"""The forwarded TLS client certificate (idp.http.client_certificate): believed from a
trusted proxy only, decided on the real TCP peer, over real HTTP as ``hoviyat serve``
runs uvicorn (its options, its protocol), and over the ASGI transport."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import JSONResponse

from idp.app import create_app
from idp.http.client_certificate import (
    ClientCertificateError,
    parse_forwarded,
    presented_certificate,
)
from idp.http.connection_guard import ConnectionLimits
from idp.serving import ServeOptions
from idp.settings import Settings

PROXY = "127.0.0.2"  # the trusted proxy's loopback address; clients come from 127.0.0.1
HEADER = "X-Client-Certificate"


def a_certificate(name: str = "agency-client") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def escaped(certificate: x509.Certificate) -> str:
    """As nginx's ``$ssl_client_escaped_cert`` writes it: URL-escaped PEM."""
    return quote(certificate.public_bytes(serialization.Encoding.PEM).decode(), safe="")


async def _peer(request: Request) -> JSONResponse:
    try:
        certificate = presented_certificate(request)
    except ClientCertificateError as error:
        return JSONResponse({"error": str(error)}, status_code=400)
    return JSONResponse(
        {
            "subject": certificate.subject.rfc4514_string() if certificate else None,
            "client": request.client.host if request.client else None,
            "scheme": request.url.scheme,
            "header_visible": HEADER.lower() in request.headers,
        }
    )


@pytest.fixture
def peer_app(hoviyat_settings: Settings, init_report: object) -> Iterator[FastAPI]:
    settings = hoviyat_settings.model_copy(update={"trusted_proxies": [PROXY]})
    app = create_app(settings)
    app.add_api_route("/test/peer", _peer, methods=["GET"])
    yield app
    app.state.hoviyat.close()


@pytest.fixture
def served(peer_app: FastAPI, server_port: int) -> Iterator[str]:
    """The app under uvicorn with exactly the options ``hoviyat serve`` gives it."""
    options = ServeOptions("0.0.0.0", server_port, 1, ConnectionLimits(), (PROXY,))
    config = uvicorn.Config(peer_app, **{**options.uvicorn_options(), "lifespan": "off"})
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server_port}"
    server.should_exit = True
    thread.join(timeout=10)


def _from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_trusted_proxy_forwards_a_certificate_over_real_http(served: str) -> None:
    certificate = a_certificate("forwarded-by-nginx")
    with _from(PROXY) as proxy:
        answer = proxy.get(
            f"{served}/test/peer",
            headers={HEADER: escaped(certificate), "X-Forwarded-For": "198.51.100.7"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["subject"] == "CN=forwarded-by-nginx"
    assert body["client"] == "198.51.100.7"  # X-Forwarded-For still applies from the proxy
    assert body["header_visible"] is False  # no later layer reads the raw header


def test_attack_client_sends_its_own_certificate_header_directly(served: str) -> None:
    """A client that reaches the application port itself forges what nginx would say."""
    with _from("127.0.0.1") as attacker:
        answer = attacker.get(
            f"{served}/test/peer",
            headers={
                HEADER: escaped(a_certificate("forged")),
                # and claims to be the proxy, to be believed after uvicorn's rewrite
                "X-Forwarded-For": PROXY,
                "X-Forwarded-Proto": "https",
            },
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["subject"] is None
    assert body["client"] == "127.0.0.1"
    assert body["scheme"] == "http"
    assert body["header_visible"] is False


def test_attack_forwarded_for_naming_the_proxy_does_not_make_a_later_hop_trusted(
    served: str,
) -> None:
    """Through the proxy, a client claiming to be the proxy is still the client."""
    with _from(PROXY) as proxy:
        answer = proxy.get(
            f"{served}/test/peer", headers={"X-Forwarded-For": f"{PROXY}, 203.0.113.9"}
        )
    assert answer.json()["client"] == "203.0.113.9"


def test_no_certificate_is_none(served: str) -> None:
    with _from(PROXY) as proxy:
        empty = proxy.get(f"{served}/test/peer", headers={HEADER: ""})
        absent = proxy.get(f"{served}/test/peer")
    assert empty.json()["subject"] is None
    assert absent.json()["subject"] is None


def test_malformed_header_from_the_trusted_proxy_is_an_error(peer_app: FastAPI) -> None:
    with TestClient(peer_app, client=(PROXY, 5555)) as proxy:
        garbage = proxy.get("/test/peer", headers={HEADER: "not%20a%20certificate"})
        two = proxy.get(
            "/test/peer",
            headers=[(HEADER, escaped(a_certificate())), (HEADER, escaped(a_certificate()))],
        )
    assert garbage.status_code == 400
    assert two.status_code == 400


def test_asgi_transport_from_an_untrusted_peer_is_not_believed(peer_app: FastAPI) -> None:
    with TestClient(peer_app, client=("127.0.0.1", 5555)) as client:
        answer = client.get("/test/peer", headers={HEADER: escaped(a_certificate())})
    assert answer.json()["subject"] is None


def test_parse_refuses_two_certificates_and_trailing_text() -> None:
    one = a_certificate().public_bytes(serialization.Encoding.PEM)
    assert parse_forwarded(quote(one.decode()).encode()).subject.rfc4514_string()
    for raw in (one + one, one + b"trailing", b"x" + one, b"%" * 20_000):
        with pytest.raises(ClientCertificateError):
            parse_forwarded(quote(raw.decode()).encode())


def test_serve_leaves_uvicorn_proxy_headers_off(tmp_path: Path) -> None:
    """uvicorn's own rewrite would hide the peer the certificate header is judged on."""
    options = ServeOptions("127.0.0.1", 0, 1, ConnectionLimits(), ("10.0.0.1",))
    assert options.uvicorn_options()["proxy_headers"] is False
