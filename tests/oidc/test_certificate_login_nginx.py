"""Certificate login end to end as deployed: a browser with a TLS client certificate,
real nginx (deploy/nginx/hoviyat.conf) in front of a real ``hoviyat serve``.

The operator's side (init, CA, client, issuance, revocation) runs the same
code as the CLI in this process; the browser is httpx with the
citizen's key and certificate, so nginx proves possession of the key in the
TLS handshake and forwards the certificate it saw (``$ssl_client_escaped_cert``).
Ports come from the kernel.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ca.keys import open_keystore
from ca.revocation import RevocationReason
from ca.settings import CASettings
from idp.cli.setup import initialise
from idp.clients import create_client
from idp.context import registry_options
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Pki
from idp.pki.registration import Request as CertificateRequest
from idp.pki.revocation import Actor, revoke
from idp.pki.subjects import SubjectReference
from idp.secrets import load_secrets
from idp.settings import Settings
from idp.storage.engine import Database
from verifiers.registry import open_registries
from verifiers.registry.base import Person

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "deploy" / "nginx" / "hoviyat.conf"
HOVIYAT = [sys.executable, "-m", "idp.cli"]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
HIGH = "http://eidas.europa.eu/LoA/high"
REDIRECT_URI = "https://tax.example.ir/callback"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (/usr/sbin/nginx)")


def _free_port() -> int:
    # The kernel's choice: a fixed range probed in order hands two pytest workers
    # the same port now and then.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"{what} exited: {stderr}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} never listened on {port}") from None
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Deployment:
    """The served URL (nginx), and the operator's side of the same data directory."""

    url: str
    settings: Settings
    db: Database
    hierarchy: Hierarchy
    pki: Pki
    folder: Path


def _nginx_site(folder: Path, upstream: int, https_port: int, http_port: int) -> Path:
    text = SITE.read_text()
    text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    text = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", text)
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("/var/log/nginx/hoviyat.access.log", str(folder / "access.log"))
    site = folder / "site.conf"
    site.write_text(text)
    tls = folder / "tls"
    tls.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=id.example.ir",
         "-keyout", str(tls / "hoviyat.key"), "-out", str(tls / "hoviyat.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "temp" / name).mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    temps = "\n".join(
        f"    {name}_temp_path {folder}/temp/{name};"
        for name in ("proxy", "fastcgi", "uwsgi", "scgi")
    )
    config.write_text(
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\ndaemon off;\n"
        f"events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n"
        f"    client_body_temp_path {folder}/temp/body;\n{temps}\n    include {site};\n}}\n"
    )
    return config


@pytest.fixture
def deployment(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path
) -> Iterator[Deployment]:
    """What 'hoviyat init' and 'hoviyat ca init' make (their own code, in this process:
    each CLI start costs seconds), then 'hoviyat serve' and nginx as processes."""
    with socket.socket() as a, socket.socket() as b:
        # Held while the next is picked, so the three differ.
        https_port = _free_port()
        a.bind(("127.0.0.1", https_port))
        http_port = _free_port()
        b.bind(("127.0.0.1", http_port))
        app_port = _free_port()
    url = f"https://127.0.0.1:{https_port}"
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="synthetic",
        registry_path=synthetic_registry_path,
        issuer=url,
        trusted_proxies=["127.0.0.1"],
    )
    initialise(settings)
    ca_dir = settings.data_dir / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    (ca_dir / "passphrase").write_text("test passphrase\n")
    os.chmod(ca_dir / "passphrase", 0o600)
    db = Database(settings.resolved_database_url)
    hierarchy = Hierarchy(
        db, open_keystore(CASettings(key_backend="file"), settings.data_dir), settings.issuer
    )
    hierarchy.init()
    registries = open_registries(settings.registry_adapter, registry_options(settings))
    pepper = load_secrets(settings.resolved_secrets_file).subject_pepper
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOVIYAT_")}
    env.update(
        HOVIYAT_DATA_DIR=str(settings.data_dir),
        HOVIYAT_DATABASE_URL=database_url,
        HOVIYAT_REGISTRY_PATH=str(synthetic_registry_path),
        HOVIYAT_ISSUER=url,
        HOVIYAT_TRUSTED_PROXIES='["127.0.0.1"]',
        HOVIYAT_LOG_LEVEL="WARNING",
    )
    served = subprocess.Popen(
        [*HOVIYAT, "serve", "--port", str(app_port), "--workers", "1"],
        env=env,
        stderr=subprocess.PIPE,
    )
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    config = _nginx_site(nginx_dir, app_port, https_port, http_port)
    nginx = subprocess.Popen(
        [str(NGINX), "-p", str(nginx_dir), "-e", str(nginx_dir / "error.log"), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(app_port, served, "hoviyat serve")
        _wait_listening(https_port, nginx, "nginx")
        pki = Pki.create(db, hierarchy, registries, pepper)
        yield Deployment(url, settings, db, hierarchy, pki, tmp_path)
    finally:
        _stop(nginx)
        _stop(served)
        registries.close()
        db.dispose()


def _card(deployed: Deployment, person: Person) -> tuple[Path, Path, x509.Certificate]:
    """The citizen's key (on their card) and the certificate the CA issues for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "card")]))
        .sign(key, hashes.SHA256())
    )
    request = CertificateRequest(
        csr=csr.public_bytes(serialization.Encoding.PEM),
        profile="person-authentication",
        subject=SubjectReference(national_code=person.national_code),
        requested_by="test-operator",
        request_reason="national card",
    )
    certificate = deployed.pki.request_certificate(request, lint=False).certificate
    cert_path = deployed.folder / f"{person.national_code}.crt"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path = deployed.folder / f"{person.national_code}.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, certificate


def _client(deployed: Deployment) -> tuple[str, str]:
    secrets = load_secrets(deployed.settings.resolved_secrets_file)
    with deployed.db.session() as session:
        created = create_client(
            session,
            secrets.client_secret_key,
            name="Tax portal",
            service_code="demo-tax-portal",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code"],
        )
    assert created.client_secret is not None
    return created.client.client_id, created.client_secret


def _field(html: str, action: str, name: str) -> str:
    form = html[html.index(f'action="{action}"') :]
    found = re.search(rf'name="{name}" value="([^"]*)"', form)
    assert found is not None, html
    return found.group(1)


def _browser(deployed: Deployment, card: tuple[Path, Path] | None) -> httpx.Client:
    # nginx's certificate is a throwaway self-signed one: this test is about the client side.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if card is not None:
        context.load_cert_chain(card[0], card[1])
    return httpx.Client(base_url=deployed.url, verify=context, follow_redirects=False, timeout=30)


def _log_in(browser: httpx.Client, client_id: str, **headers: str) -> httpx.Response:
    """/authorize at level high, then the certificate form; the answer to that POST."""
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
        "scope": "openid profile", "state": "st", "nonce": "nc", "acr_values": HIGH,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256", "ui_locales": "en",
    }  # fmt: skip
    page = browser.get("/authorize", params=params)
    assert page.status_code == 200, page.text
    fields = {
        name: _field(page.text, "/login/identify", name)
        for name in ("interaction", "lang", "csrf_token")
    }
    return browser.post("/login/certificate", data=fields, headers=headers)


def _claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_card_login_through_nginx_reaches_high_and_a_revoked_card_is_refused(
    deployment: Deployment, citizen: Person
) -> None:
    client_id, secret = _client(deployment)
    cert_path, key_path, certificate = _card(deployment, citizen)
    with _browser(deployment, (cert_path, key_path)) as browser:
        answer = _log_in(browser, client_id)
        assert answer.status_code == 303, answer.text
        page = browser.get(answer.headers["location"])
        while page.status_code == 200 and "/login/consent" in page.text:
            fields = {
                name: _field(page.text, "/login/consent", name)
                for name in ("interaction", "lang", "csrf_token")
            }
            page = browser.post("/login/consent", data={**fields, "decision": "allow"})
        while page.headers["location"].startswith(("/", deployment.url)):
            page = browser.get(page.headers["location"])
        back = parse_qs(urlsplit(page.headers["location"]).query)
        tokens = browser.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": back["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            },
            auth=(client_id, secret),
        )
        assert tokens.status_code == 200, tokens.text
        claims = _claims(tokens.json()["id_token"])
        assert claims["acr"] == HIGH
        assert set(claims["amr"]) == {"sc", "hwk"}

    # The card is reported stolen; the operator revokes it; it logs no one in from then on.
    revoke(deployment.db, certificate.serial_number, RevocationReason.keyCompromise,
           Actor("operator", "test-operator", "card reported stolen"))  # fmt: skip
    with _browser(deployment, (cert_path, key_path)) as browser:
        refused = _log_in(browser, client_id)
        assert refused.status_code == 403, refused.text
        assert "This certificate has been revoked" in refused.text


def test_attack_certificate_header_sent_by_the_client_is_not_believed(
    deployment: Deployment, citizen: Person
) -> None:
    """Someone who has a copy of the certificate (it is public) but not the card's key
    sends it in the header nginx would set: nginx replaces it with what the TLS
    handshake proved, which is nothing."""
    client_id, _secret = _client(deployment)
    _cert_path, _key_path, certificate = _card(deployment, citizen)
    forged = quote(certificate.public_bytes(serialization.Encoding.PEM).decode(), safe="")
    with _browser(deployment, None) as browser:
        refused = _log_in(browser, client_id, **{"X-Client-Certificate": forged})
        assert refused.status_code == 400, refused.text
        assert "Your browser sent no certificate" in refused.text
        assert not any(name.endswith("hoviyat_session") for name in browser.cookies)
