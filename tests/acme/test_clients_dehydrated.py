"""Debian's dehydrated (bash and curl) against a running ``hoviyat serve`` (issue 16).

dehydrated writes each http-01 key authorization into its ``WELLKNOWN``
folder; a small web server serves that folder on 127.0.0.73, where the
loopback DNS points the names and ``HOVIYAT_ACME_HTTP01_PORT`` sends the
validator. External account binding comes from its config (``EAB_KID``,
``EAB_HMAC_KEY``); curl reaches the directory through the test proxy and
trusts the front end's test CA (``CURL_CA_BUNDLE``). Obtain, forced renewal,
revocation; ``openssl verify``, pkilint and OCSP judge. SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
import time
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
from served_acme import Eab, ServedAcme, WellKnownServer

DEHYDRATED = shutil.which("dehydrated") or "dehydrated"
ADDRESS = "127.0.0.73"  # the web server in front of dehydrated's WELLKNOWN folder

pytestmark = needs("dehydrated")


@pytest.fixture(scope="module")
def served(
    acme_backend: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
    synthetic_registry_path: Path,
) -> Iterator[tuple[ServedAcme, int]]:
    folder = tmp_path_factory.mktemp(f"dehydrated-{acme_backend}")
    yield from start_served(acme_backend, folder, synthetic_registry_path, ADDRESS, http01=True)


def configure(acme: ServedAcme, folder: Path, eab: Eab) -> Path:
    config = folder / "config"
    config.write_text(
        f'CA="{acme.directory}"\n'
        'CHALLENGETYPE="http-01"\n'
        f'WELLKNOWN="{folder / "well-known"}"\n'
        f'BASEDIR="{folder}"\n'
        f'EAB_KID="{eab.kid}"\n'
        f'EAB_HMAC_KEY="{eab.hmac_key}"\n'
    )
    return config


def test_dehydrated_obtains_renews_and_revokes_with_http01(
    served: tuple[ServedAcme, int], tmp_path: Path
) -> None:
    acme, port = served
    env = acme.client_env()
    name = f"web.{acme.domain}"
    dehydrated = [DEHYDRATED, "-f", str(configure(acme, tmp_path, acme.new_eab()))]
    live = tmp_path / "certs" / name

    with WellKnownServer(tmp_path / "well-known", ADDRESS, port) as web:
        done = run([*dehydrated, "--register", "--accept-terms"], env, tmp_path)
        assert done.returncode == 0, said(done, acme)

        done = run([*dehydrated, "--cron", "--domain", name], env, tmp_path)
        assert done.returncode == 0, said(done, acme)
        first = assert_issued(acme, live / "cert.pem", live / "chain.pem", [name])
        assert any(path.startswith("/.well-known/acme-challenge/") for path in web.requests)
        kept = tmp_path / "first.pem"
        shutil.copy(live / "cert.pem", kept)

        time.sleep(1)  # dehydrated names its files by the second: keep the first one
        done = run([*dehydrated, "--cron", "--domain", name, "--force"], env, tmp_path)
        assert done.returncode == 0, said(done, acme)
        second = assert_issued(acme, live / "cert.pem", live / "chain.pem", [name])
        assert second.serial_number != first.serial_number

    current = tmp_path / "second.pem"
    shutil.copy(live / "cert.pem", current)
    done = run([*dehydrated, "--revoke", str(live / "cert.pem")], env, tmp_path)
    assert done.returncode == 0, said(done, acme)
    assert_status(acme, current, live / "chain.pem", "revoked")
    assert_status(acme, kept, live / "chain.pem", "good")


def test_attack_wrong_key_authorization_fails_the_challenge(
    served: tuple[ServedAcme, int], tmp_path: Path
) -> None:
    acme, port = served
    env = acme.client_env()
    name = f"forged.{acme.domain}"
    dehydrated = [DEHYDRATED, "-f", str(configure(acme, tmp_path, acme.new_eab()))]
    with WellKnownServer(tmp_path / "well-known", ADDRESS, port) as web:
        done = run([*dehydrated, "--register", "--accept-terms"], env, tmp_path)
        assert done.returncode == 0, said(done, acme)
        # The right token under another account key's thumbprint (RFC 8555 §8.3).
        web.forge = True
        done = run([*dehydrated, "--cron", "--domain", name], env, tmp_path)
    assert done.returncode != 0
    assert any(path.startswith("/.well-known/acme-challenge/") for path in web.requests)
    assert "urn:ietf:params:acme:error:incorrectResponse" in done.stdout + done.stderr, said(done)
    assert not (tmp_path / "certs" / name / "cert.pem").exists()
