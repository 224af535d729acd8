"""Debian's lego against a running ``hoviyat serve`` (issue 16's acceptance).

dns-01: lego's ``exec`` DNS provider runs a hook that writes the TXT record
into the loopback DNS server's zone (``served_acme.LoopbackDns``, files under
its ``txt_dir``); lego checks it there itself (``--dns.resolvers``), and the
server's validator finds it through ``HOVIYAT_ACME_DNS_RESOLVER``. tls-alpn-01
(RFC 8737): lego's own responder on 127.0.0.72, where the names point and
``HOVIYAT_ACME_TLS_ALPN01_PORT`` sends the validator. Accounts use external
account binding (``--eab --kid --hmac``). ``openssl verify``, pkilint and the
OCSP responder judge the results. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from clients_support import (
    acme_backend,  # noqa: F401  (fixture)
    assert_issued,
    assert_status,
    needs,
    run,
    said,
    start_served,
)
from served_acme import Eab, ServedAcme

LEGO = shutil.which("lego") or "lego"
ADDRESS = "127.0.0.72"  # lego's tls-alpn-01 responder

pytestmark = needs("lego")

# lego's exec provider calls: <hook> present|cleanup <fqdn.> <value>
HOOK = """#!/bin/sh
name=$(printf %s "$2" | sed 's/\\.$//')
case "$1" in
  present) printf '%s\\n' "$3" >> "$TXT_DIR/$name" ;;
  cleanup) rm -f "$TXT_DIR/$name" ;;
esac
"""


@pytest.fixture(scope="module")
def served(
    acme_backend: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
    synthetic_registry_path: Path,
) -> Iterator[tuple[ServedAcme, int]]:
    folder = tmp_path_factory.mktemp(f"lego-{acme_backend}")
    yield from start_served(acme_backend, folder, synthetic_registry_path, ADDRESS, tls_alpn01=True)


def lego(acme: ServedAcme, folder: Path, eab: Eab, name: str, *solver: str) -> list[str]:
    return [
        LEGO,
        "--server",
        acme.directory,
        "--accept-tos",
        "--email",
        f"hostmaster@{acme.domain}",
        "--eab",
        "--kid",
        eab.kid,
        "--hmac",
        eab.hmac_key,
        "--path",
        str(folder / "lego"),
        "--domains",
        name,
        *solver,
    ]


def dns01(acme: ServedAcme, folder: Path) -> tuple[list[str], dict[str, str]]:
    hook = folder / "txt-hook.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    assert acme.dns.txt_dir is not None
    env = acme.client_env(
        EXEC_PATH=str(hook),
        TXT_DIR=str(acme.dns.txt_dir),
        EXEC_PROPAGATION_TIMEOUT="60",
        EXEC_POLLING_INTERVAL="1",
    )
    # --dns.disable-cp: the zone's NS names are not real, so lego checks the TXT at the
    # loopback resolver only instead of at each authoritative server.
    flags = ["--dns", "exec", "--dns.resolvers", acme.dns.address, "--dns.disable-cp"]
    return flags, env


def test_lego_obtains_with_dns01_renews_and_revokes(
    served: tuple[ServedAcme, int], tmp_path: Path
) -> None:
    acme, _ = served
    name = f"api.{acme.domain}"
    solver, env = dns01(acme, tmp_path)
    command = lego(acme, tmp_path, acme.new_eab(), name, *solver)
    certificates = tmp_path / "lego" / "certificates"
    leaf, issuer = certificates / f"{name}.crt", certificates / f"{name}.issuer.crt"

    done = run([*command, "run"], env, tmp_path)
    assert done.returncode == 0, said(done, acme)
    first = assert_issued(acme, leaf, issuer, [name])
    assert ("TXT", f"_acme-challenge.{name}") in acme.dns.queries
    kept = tmp_path / "first"
    kept.mkdir()
    shutil.copy(leaf, kept / "cert.pem")
    shutil.copy(issuer, kept / "chain.pem")

    # Renewal now: any certificate with less than 100000 days left is renewed.
    done = run([*command, "renew", "--days", "100000", "--no-random-sleep"], env, tmp_path)
    assert done.returncode == 0, said(done, acme)
    second = assert_issued(acme, leaf, issuer, [name])
    assert second.serial_number != first.serial_number

    shutil.copy(leaf, tmp_path / "second.pem")
    done = run([*command, "revoke"], env, tmp_path)
    assert done.returncode == 0, said(done, acme)
    assert "Certificate was revoked" in done.stdout + done.stderr
    assert_status(acme, tmp_path / "second.pem", kept / "chain.pem", "revoked")
    assert_status(acme, kept / "cert.pem", kept / "chain.pem", "good")


def test_lego_obtains_with_tls_alpn01(served: tuple[ServedAcme, int], tmp_path: Path) -> None:
    acme, port = served
    name = f"alpn.{acme.domain}"
    command = lego(acme, tmp_path, acme.new_eab(), name, "--tls", "--tls.port", f"{ADDRESS}:{port}")
    done = run([*command, "run"], acme.client_env(), tmp_path)
    assert done.returncode == 0, said(done, acme)
    certificates = tmp_path / "lego" / "certificates"
    assert_issued(acme, certificates / f"{name}.crt", certificates / f"{name}.issuer.crt", [name])


def test_lego_obtains_a_wildcard_with_dns01(served: tuple[ServedAcme, int], tmp_path: Path) -> None:
    # A wildcard can only be validated by dns-01 (RFC 8555 §7.1.3, §8.4): the TXT record
    # goes at _acme-challenge of the base name.
    acme, _ = served
    base = f"wild.{acme.domain}"
    solver, env = dns01(acme, tmp_path)
    done = run([*lego(acme, tmp_path, acme.new_eab(), f"*.{base}", *solver), "run"], env, tmp_path)
    assert done.returncode == 0, said(done, acme)
    certificates = tmp_path / "lego" / "certificates"
    leaf, issuer = certificates / f"_.{base}.crt", certificates / f"_.{base}.issuer.crt"
    assert_issued(acme, leaf, issuer, [f"*.{base}"])
    assert ("TXT", f"_acme-challenge.{base}") in acme.dns.queries
