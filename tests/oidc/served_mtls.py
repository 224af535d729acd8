"""A real ``hoviyat serve`` behind a real nginx with deploy/nginx/hoviyat.conf, for the
mutual-TLS tests (RFC 8705): the operator's CLI sets it up, and issues client
certificates with ``hoviyat ca issue --profile oauth-client``. Ports from the kernel.
A test module makes its fixture of :func:`served_behind_nginx`.
"""

from __future__ import annotations

import base64
import contextlib
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

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nginx_support import main_config

from verifiers.registry.synthetic import SyntheticRegistry

REPO = Path(__file__).resolve().parents[2]
HOVIYAT = [sys.executable, "-m", "idp.cli"]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def free_port() -> int:
    # The kernel's choice: it never hands out a port bound at that moment, and its
    # ephemeral range is far from the fixed ports other suites use. (A fixed range
    # probed at random collided with the other pytest worker's picks.)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*HOVIYAT, *args], env=env, capture_output=True, text=True, timeout=180, cwd=REPO
    )
    assert done.returncode == 0, f"hoviyat {' '.join(args)}: {done.stderr or done.stdout}"
    return done.stdout


def tls_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """nginx's own throwaway server certificate (openssl CLI)."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class Served:
    https: str  # nginx
    direct: str  # hoviyat serve itself
    env: dict[str, str]
    folder: Path


def _nginx_config(folder: Path, https_port: int, http_port: int, upstream: int) -> Path:
    text = (REPO / "deploy" / "nginx" / "hoviyat.conf").read_text()
    text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    text = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", text)
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("/var/log/nginx/hoviyat.access.log", str(folder / "access.log"))
    site = folder / "site.conf"
    site.write_text(text)
    (folder / "tls").mkdir()
    cert, key = tls_pair(folder, "front")
    shutil.copyfile(cert, folder / "tls" / "hoviyat.crt")
    shutil.copyfile(key, folder / "tls" / "hoviyat.key")
    return main_config(folder, site, worker_connections=256)


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120  # a loaded 2-core runner starts slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            httpx.get(url, timeout=1, verify=False)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def served_behind_nginx(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path
) -> Iterator[Served]:
    """Initialise, issue the CA, start ``hoviyat serve`` and nginx; stop both afterwards."""
    serve_port, https_port, http_port = free_port(), 0, 0
    with socket.socket() as a, socket.socket() as b:
        # Held while the others are picked, so the three differ.
        a.bind(("127.0.0.1", serve_port))
        https_port = free_port()
        b.bind(("127.0.0.1", https_port))
        http_port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOVIYAT_")}
    env.update(
        HOVIYAT_DATA_DIR=str(tmp_path / "data"),
        HOVIYAT_DATABASE_URL=database_url,
        HOVIYAT_REGISTRY_PATH=str(synthetic_registry_path),
        HOVIYAT_REGISTRY_ADAPTER="synthetic",
        HOVIYAT_ISSUER=f"https://127.0.0.1:{https_port}",
        HOVIYAT_TRUSTED_PROXIES='["127.0.0.1"]',
        HOVIYAT_LOG_LEVEL="WARNING",
    )
    run_cli(env, "init", "--json")
    run_cli(env, "ca", "init")
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        serve = subprocess.Popen(
            [*HOVIYAT, "serve", "--host", "127.0.0.1", "--port", str(serve_port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    folder = tmp_path / "nginx"
    folder.mkdir()
    config = _nginx_config(folder, https_port, http_port, serve_port)
    nginx = subprocess.Popen(
        [str(NGINX), "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{serve_port}/readyz", serve, log)
        _wait(f"https://127.0.0.1:{https_port}/readyz", nginx, folder / "error.log")
        yield Served(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{serve_port}", env,
                     tmp_path)  # fmt: skip
    finally:
        _stop(nginx)
        _stop(serve)


def client_certificate(
    served: Served, national_id: str, name: str = "client"
) -> tuple[Path, Path, x509.Certificate]:
    """The agency's key (kept by it) and its certificate by ``hoviyat ca issue``."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]))
        .sign(key, hashes.SHA256())
    )
    csr_path = served.folder / f"{name}.csr"
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    chain = run_cli(
        served.env, "ca", "issue", "--csr", str(csr_path), "--profile", "oauth-client",
        "--subject-national-id", national_id, "--service-name", "tax back office",
        "--reason", "RFC 8705 client of the tax agency",
    )  # fmt: skip
    leaf = x509.load_pem_x509_certificates(chain.encode())[0]
    cert_path, key_path = served.folder / f"{name}.crt", served.folder / f"{name}.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, leaf


def tls(cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nginx's certificate is a throwaway
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def a_person(registry_path: Path) -> dict[str, str]:
    registry = SyntheticRegistry(registry_path)
    try:
        person = next(p for p, _ in registry.iter_persons(50) if p.alive)
    finally:
        registry.close()
    return {
        "national_code": person.national_code,
        "birth_date": person.birth_date.isoformat(),
        "first_name": person.first_name,
    }
