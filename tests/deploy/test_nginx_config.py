"""deploy/nginx/hoviyat.conf: nginx accepts it, and it forwards only the headers Hoviyat trusts."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from nginx_support import main_config, self_signed, site_tls

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "deploy" / "nginx" / "hoviyat.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (/usr/sbin/nginx)")


def test_nginx_accepts_the_site_config(tmp_path: Path) -> None:
    site_tls(tmp_path)
    config = main_config(tmp_path, SITE)
    result = subprocess.run(
        [
            str(NGINX),
            "-t",
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "error.log"),
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EchoHeaders(http.server.BaseHTTPRequestHandler):
    """An upstream that answers with the request headers it received, as JSON."""

    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Frame-Options", "SAMEORIGIN")  # must be replaced, not doubled
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The site config served by a real nginx on loopback ports, in front of EchoHeaders."""
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHeaders)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    https_port, http_port = free_port(), free_port()
    text = SITE.read_text()
    text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream.server_port};")
    text = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", text)
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("/var/log/nginx/hoviyat.access.log", str(tmp_path / "access.log"))
    site = tmp_path / "site.conf"
    site.write_text(text)
    site_tls(tmp_path)
    config = main_config(tmp_path, site)
    nginx = subprocess.Popen(
        [str(NGINX), "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"https://127.0.0.1:{https_port}"
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                httpx.get(url, verify=False, timeout=1)
                break
            except httpx.TransportError:
                if nginx.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "error.log").read_text()) from None
                time.sleep(0.05)
        yield {
            "https": url,
            "http": f"http://127.0.0.1:{http_port}",
            "access_log": str(tmp_path / "access.log"),
        }
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()


def test_only_trusted_forwarding_headers_reach_hoviyat(proxied: dict[str, str]) -> None:
    forged = {
        "X-Forwarded-For": "203.0.113.66",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "for=203.0.113.66;proto=http",
        "X-Real-IP": "203.0.113.66",
        "X-Forwarded-Port": "1",
        "X-Original-URL": "/admin",
    }
    answer = httpx.get(f"{proxied['https']}/healthz", headers=forged, verify=False)
    seen = answer.json()
    assert seen["x-forwarded-for"] == "127.0.0.1"  # what nginx saw, not what was claimed
    assert seen["x-forwarded-proto"] == "https"
    for header in (
        "x-forwarded-host",
        "forwarded",
        "x-real-ip",
        "x-forwarded-port",
        "x-original-url",
    ):
        assert header not in seen, header
    assert answer.headers.get_list("x-frame-options") == ["DENY"]
    assert answer.headers["strict-transport-security"].startswith("max-age=")
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_plain_http_is_redirected_to_https(proxied: dict[str, str]) -> None:
    answer = httpx.get(f"{proxied['http']}/v1/persons/verify?x=1")
    assert answer.status_code == 301
    assert answer.headers["location"].startswith("https://")
    assert answer.headers["location"].endswith("/v1/persons/verify?x=1")


def test_attack_identifiers_in_query_strings_are_not_kept_in_the_access_log(
    proxied: dict[str, str],
) -> None:
    # A national code in a query (identifiers/validate, login_hint) must not land in
    # nginx's plain-text log, where no subject pepper protects it.
    national_code = "0499370899"
    for base in (proxied["https"], proxied["http"]):
        httpx.get(f"{base}/v1/identifiers/validate?national_code={national_code}", verify=False)
        httpx.get(f"{base}/authorize?login_hint={national_code}", verify=False)
    deadline = time.monotonic() + 5
    log = Path(proxied["access_log"])
    while log.read_text().count("\n") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log.read_text()
    assert "/v1/identifiers/validate" in text and "/authorize" in text
    assert national_code not in text


def _client_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A throwaway self-signed client certificate and key (PEM files) made by openssl."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    self_signed(key, cert, name)
    return cert, key


def _tls(cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nginx's own certificate is a throwaway
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def test_nginx_forwards_the_client_certificate_it_was_shown(
    proxied: dict[str, str], tmp_path: Path
) -> None:
    """RFC 8705 §2: the certificate of the TLS handshake reaches Hoviyat, URL-escaped PEM."""
    cert = _client_certificate(tmp_path, "agency-client")
    answer = httpx.get(f"{proxied['https']}/healthz", verify=_tls(cert))
    forwarded = answer.json()["x-client-certificate"]
    assert unquote(forwarded).strip() == cert[0].read_text().strip()


def test_attack_client_sends_its_own_certificate_header_through_nginx(
    proxied: dict[str, str], tmp_path: Path
) -> None:
    """A forged header never passes: replaced by the handshake's certificate, or dropped."""
    cert = _client_certificate(tmp_path, "real-holder")
    forged_cert, _ = _client_certificate(tmp_path, "victim")
    forged = {"X-Client-Certificate": quote(forged_cert.read_text(), safe="")}
    without = httpx.get(f"{proxied['https']}/healthz", headers=forged, verify=_tls())
    assert "x-client-certificate" not in without.json()
    with_own = httpx.get(f"{proxied['https']}/healthz", headers=forged, verify=_tls(cert))
    assert unquote(with_own.json()["x-client-certificate"]).strip() == cert[0].read_text().strip()
