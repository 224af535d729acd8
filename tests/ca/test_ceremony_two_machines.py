"""The offline-root ceremony on two machines, through the real ``hoviyat`` CLI.

Two data directories stand for the two machines: the root's (never networked,
its own SQLite database and key files, a HOVIYAT_ISSUER of its own that must
not end up in any certificate) and the online one (the test database, served
by ``hoviyat serve``). The ceremony ends where a relying party starts: with
``openssl verify -crl_check_all`` over a certificate issued online, both CRLs
fetched over HTTP from the running app at the URLs the certificates name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fixtures_app import free_port
from pki_helpers import make_csr
from status_helpers import lint, pem, run

HOVIYAT = Path(sys.executable).parent / "hoviyat"
ROOT_MACHINE_URL = "http://root-ca.internal"


class Machine:
    """One machine's ``hoviyat``: its data directory, database and configuration."""

    def __init__(self, data_dir: Path, database_url: str, issuer: str, registry: Path) -> None:
        data_dir.mkdir(parents=True)
        passphrase = data_dir / "ca-passphrase"
        passphrase.write_text(f"passphrase of {data_dir.name}\n")
        os.chmod(passphrase, 0o600)
        self.environment = {k: v for k, v in os.environ.items() if not k.startswith("HOVIYAT_")}
        self.environment.update(
            HOVIYAT_DATA_DIR=str(data_dir),
            HOVIYAT_DATABASE_URL=database_url,
            HOVIYAT_ISSUER=issuer,
            HOVIYAT_CA_PASSPHRASE_FILE=str(passphrase),
            HOVIYAT_REGISTRY_ADAPTER="synthetic",
            HOVIYAT_REGISTRY_PATH=str(registry),
        )

    def __call__(self, *args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(HOVIYAT), *map(str, args)],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert (result.returncode == 0) == ok, (args, result.stdout, result.stderr)
        return result

    def lifecycle_audit(self, out: Path) -> list[tuple[str, str]]:
        """Export and verify this machine's audit log; its (operation, outcome) CA entries."""
        self("audit", "export", "--out", out)
        verified = self("audit", "verify", out)
        assert verified.stdout.startswith("OK"), verified.stdout
        entries = [
            line["entry"]
            for line in map(json.loads, out.read_text().splitlines())
            if line["type"] == "entry"
        ]
        return [
            (e["operation"], e["outcome"])
            for e in entries
            if e["event_type"] in ("ca_lifecycle", "crl_published")
        ]


def _uris(certificate: x509.Certificate) -> tuple[str, str]:
    """(CDP, AIA caIssuers) of a certificate."""
    cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    ca_issuers = next(
        d for d in aia if d.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS
    )
    full_name = cdp[0].full_name or []
    return str(full_name[0].value), str(ca_issuers.access_location.value)


def _serve(machine: Machine, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(HOVIYAT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=machine.environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"hoviyat serve exited: {log.read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    raise AssertionError(f"hoviyat serve did not start: {log.read_text()}")


def _fetch(url: str, path: Path) -> Path:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, (url, response.status_code, response.text)
    assert response.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.content)
    path.with_suffix(".der").write_bytes(response.content)
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path


def test_offline_root_ceremony_on_two_machines_ends_in_openssl_crl_check_all(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path, living_person: str
) -> None:
    port = free_port()
    online_url = f"http://127.0.0.1:{port}"
    root = Machine(
        tmp_path / "root-machine",
        f"sqlite:///{tmp_path / 'root-machine.db'}",
        ROOT_MACHINE_URL,
        synthetic_registry_path,
    )
    online = Machine(tmp_path / "online-machine", database_url, online_url, synthetic_registry_path)
    root("init", "--json")
    online("init", "--json")

    root("ca", "init", "--root-only")
    csr = tmp_path / "persons.csr"
    online("ca", "csr", "--issuing", "persons", "--out", csr)
    signed = root("ca", "sign-issuing", "--csr", csr, "--online-url", online_url)
    chain_file = tmp_path / "persons-chain.pem"
    chain_file.write_text(signed.stdout)
    issuing, root_certificate = x509.load_pem_x509_certificates(signed.stdout.encode())
    assert _uris(issuing) == (f"{online_url}/crl/root.crl", f"{online_url}/ca/root.crt")
    online("ca", "install-issuing", "--chain", chain_file)
    root_crl = tmp_path / "root.crl"
    root("ca", "root-crl", "--out", root_crl)
    online("ca", "import-crl", "--crl", root_crl)

    server = _serve(online, port, tmp_path / "serve.log")
    try:
        leaf_csr = tmp_path / "leaf.csr"
        leaf_csr.write_bytes(make_csr()[0])
        issued = online(
            "ca", "issue", "--csr", leaf_csr, "--profile", "person-authentication",
            "--subject-national-code", living_person, "--reason", "ceremony test",
        )  # fmt: skip
        leaf, *chain = x509.load_pem_x509_certificates(issued.stdout.encode())
        assert chain == [issuing, root_certificate]
        leaf_cdp, _ = _uris(leaf)
        issuing_cdp, issuing_aia = _uris(issuing)
        # Every URL a relying party follows answers from the running online machine.
        aia = httpx.get(issuing_aia, timeout=30)
        assert aia.status_code == 200
        assert x509.load_der_x509_certificate(aia.content) == root_certificate
        leaf_crl = _fetch(leaf_cdp, tmp_path / "persons.crl.pem")
        served_root_crl = _fetch(issuing_cdp, tmp_path / "root.crl.pem")
        assert served_root_crl.with_suffix(".der").read_bytes() == root_crl.read_bytes()
        assert (
            lint("lint_crl", served_root_crl.with_suffix(".der"), "-t", "CRL", "-p", "PKIX")
        ).returncode == 0

        (tmp_path / "root.pem").write_bytes(pem(root_certificate))
        (tmp_path / "issuing.pem").write_bytes(pem(issuing))
        (tmp_path / "leaf.pem").write_bytes(pem(leaf))
        verified = run(
            "openssl", "verify", "-crl_check_all", "-x509_strict",
            "-CAfile", tmp_path / "root.pem", "-untrusted", tmp_path / "issuing.pem",
            "-CRLfile", leaf_crl, "-CRLfile", served_root_crl, tmp_path / "leaf.pem",
        )  # fmt: skip
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.strip().endswith(": OK")

        # The issuing CA revoked on the root's machine: the next root CRL says so.
        root("ca", "revoke", f"{issuing.serial_number:x}", "--reason", "cACompromise")
        root("ca", "root-crl", "--out", root_crl)
        online("ca", "import-crl", "--crl", root_crl)
        served_root_crl = _fetch(issuing_cdp, tmp_path / "root.crl.pem")
        refused = run(
            "openssl", "verify", "-crl_check_all",
            "-CAfile", tmp_path / "root.pem", "-untrusted", tmp_path / "issuing.pem",
            "-CRLfile", leaf_crl, "-CRLfile", served_root_crl, tmp_path / "leaf.pem",
        )  # fmt: skip
        assert refused.returncode != 0 and "certificate revoked" in refused.stdout + refused.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)

    root_audit = root.lifecycle_audit(tmp_path / "root-audit.jsonl")
    assert ("init", "created") in root_audit
    assert ("sign_issuing", "issued") in root_audit
    assert ("publish_crl", "published") in root_audit
    online_audit = online.lifecycle_audit(tmp_path / "online-audit.jsonl")
    assert ("csr", "requested") in online_audit
    assert ("install_issuing", "root_installed") in online_audit
    assert ("install_issuing", "installed") in online_audit
    assert online_audit.count(("import_crl", "published")) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_attack_root_crl_path_answers_503_until_a_root_crl_is_imported(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path
) -> None:
    """Without 'ca import-crl' the online machine cannot sign the root's CRL: it says so."""
    port = free_port()
    online_url = f"http://127.0.0.1:{port}"
    root = Machine(
        tmp_path / "root-machine",
        f"sqlite:///{tmp_path / 'root-machine.db'}",
        ROOT_MACHINE_URL,
        synthetic_registry_path,
    )
    online = Machine(tmp_path / "online-machine", database_url, online_url, synthetic_registry_path)
    root("init", "--json")
    online("init", "--json")
    root("ca", "init", "--root-only")
    csr = tmp_path / "persons.csr"
    online("ca", "csr", "--issuing", "persons", "--out", csr)
    chain_file = tmp_path / "chain.pem"
    chain_file.write_text(
        root("ca", "sign-issuing", "--csr", csr, "--online-url", online_url).stdout
    )
    online("ca", "install-issuing", "--chain", chain_file)
    server = _serve(online, port, tmp_path / "serve.log")
    try:
        before = httpx.get(f"{online_url}/crl/root.crl", timeout=30)
        assert before.status_code == 503 and "Retry-After" in before.headers
        assert before.headers["content-type"] == "application/problem+json"
        assert "ca import-crl" in before.json()["detail"]
        root_crl = tmp_path / "root.crl"
        root("ca", "root-crl", "--out", root_crl)
        garbage = tmp_path / "garbage.crl"
        garbage.write_bytes(b"not a crl")
        refused = online("ca", "import-crl", "--crl", garbage, ok=False)
        assert refused.stderr.count("\n") == 1 and "not a CRL" in refused.stderr
        assert "Traceback" not in refused.stderr
        online("ca", "import-crl", "--crl", root_crl)
        after = httpx.get(f"{online_url}/crl/root.crl", timeout=30)
        assert after.status_code == 200 and after.content == root_crl.read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=30)
