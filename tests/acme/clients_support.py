"""What the real-client tests (test_clients_*.py) share: the served ACME server on
SQLite and PostgreSQL, running a client, and judging the certificate it got."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from served_acme import (
    NGINX,
    ServedAcme,
    free_port,
    leaf_only,
    ocsp_status,
    openssl_verify,
    pkilint_tls,
    postgres_schema,
    served_acme,
    split_pem,
)

PG_URL = os.environ.get("HOVIYAT_TEST_DATABASE_URL", "")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not PG_URL, reason="HOVIYAT_TEST_DATABASE_URL is unset: PostgreSQL case skipped"
        ),
    ),
]
CLIENT_TIMEOUT = 180  # seconds: a hung client fails the test instead of hanging it


def needs(binary: str) -> pytest.MarkDecorator:
    """Skip, saying why, when the Debian client (or nginx, the TLS front) is missing."""
    missing = [name for name in (binary,) if shutil.which(name) is None]
    if NGINX is None:
        missing.append("nginx")
    return pytest.mark.skipif(
        bool(missing), reason=f"not installed: {', '.join(missing)} (apt-get install -y ...)"
    )


@pytest.fixture(scope="module", params=BACKENDS)
def acme_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def start_served(
    backend: str,
    folder: Path,
    registry: Path,
    client_address: str,
    *,
    http01: bool = False,
    tls_alpn01: bool = False,
    workers: int = 1,
) -> Iterator[tuple[ServedAcme, int]]:
    """A served ACME server whose validators dial ``client_address``, and the port
    (on that address) where the client's http-01 or tls-alpn-01 responder listens."""
    port = free_port(client_address)
    ports: dict[str, int] = {
        "http01_port": port if http01 else 0,
        "tls_alpn01_port": port if tls_alpn01 else 0,
        "workers": workers,
    }
    if backend == "sqlite":
        with served_acme(folder, "", registry, client_address=client_address, **ports) as acme:
            yield acme, port
        return
    schema = f"hv_acme_{folder.name}_{os.getpid()}".replace("-", "_")[:60]
    with (
        postgres_schema(PG_URL, schema) as url,
        served_acme(folder, url, registry, client_address=client_address, **ports) as acme,
    ):
        yield acme, port


def run(
    command: list[str], env: dict[str, str], cwd: Path, timeout: float = CLIENT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def said(done: subprocess.CompletedProcess[str], acme: ServedAcme | None = None) -> str:
    """A client's output (and the server's log) for an assertion message."""
    text = f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    if acme is not None:
        text += f"\n--- hoviyat serve log ---\n{acme.log()}"
    return text


def assert_issued(acme: ServedAcme, leaf: Path, chain: Path, names: list[str]) -> x509.Certificate:
    """The certificate names exactly ``names``, chains to Hoviyat's root under openssl's
    strict checks for a TLS server, and pkilint's CA/B Forum linter finds nothing."""
    certificate = split_pem(leaf)[0]
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(names)
    verified = openssl_verify(acme.ca_root(), chain, leaf)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    linted = pkilint_tls(leaf_only(leaf, leaf.with_name(leaf.name + ".leaf.pem")))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    return certificate


def assert_status(acme: ServedAcme, leaf: Path, chain: Path, expected: str) -> None:
    """Hoviyat's OCSP responder says ``expected`` ("good", "revoked") of the certificate."""
    issuer = chain.with_name(chain.name + ".issuer")
    issuer.write_bytes(split_pem(chain)[0].public_bytes(Encoding.PEM))
    assert ocsp_status(acme.upstream, acme.ca_root(), issuer, leaf) == expected
