"""Debian's certbot against a running ``hoviyat serve`` (issue 16's acceptance).

certbot talks to the ACME directory through nginx with the deploy site config
(TLS, ``served_acme``), registers with external account binding
(``--eab-kid``, ``--eab-hmac-key``), answers http-01 with its standalone
server on 127.0.0.71 (where the loopback DNS points the names and
``HOVIYAT_ACME_HTTP01_PORT`` sends the validator), renews, and revokes once
by its account key and once by the certificate key, changes its contact and
deactivates its account. ``openssl verify`` and pkilint judge every
certificate; the OCSP responder must agree with the revocations and the audit
log must name the entity. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from acme_client import AcmeClient
from clients_support import (
    acme_backend,  # noqa: F401  (fixture)
    assert_issued,
    assert_status,
    needs,
    run,
    said,
    start_served,
)
from served_acme import ServedAcme

from ca.serials import serial_hex

CERTBOT = shutil.which("certbot") or "certbot"
ADDRESS = "127.0.0.71"  # certbot's standalone http-01 server

pytestmark = needs("certbot")


@pytest.fixture(scope="module")
def served(
    acme_backend: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
    synthetic_registry_path: Path,
) -> Iterator[tuple[ServedAcme, int]]:
    folder = tmp_path_factory.mktemp(f"certbot-{acme_backend}")
    # Two workers, as deployed: nginx's upstream connections land on either one, so a
    # nonce may be issued by one worker and redeemed at the other (RFC 8555 §6.5).
    yield from start_served(
        acme_backend, folder, synthetic_registry_path, ADDRESS, http01=True, workers=2
    )


def certbot(folder: Path) -> list[str]:
    """certbot kept inside ``folder`` (never /etc/letsencrypt)."""
    return [
        CERTBOT,
        "--non-interactive",
        "--config-dir",
        str(folder / "config"),
        "--work-dir",
        str(folder / "work"),
        "--logs-dir",
        str(folder / "logs"),
    ]


def certonly(acme: ServedAcme, port: int, folder: Path, name: str, *eab: str) -> list[str]:
    return [
        *certbot(folder),
        "certonly",
        "--standalone",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--server",
        acme.directory,
        *eab,
        "--http-01-address",
        ADDRESS,
        "--http-01-port",
        str(port),
        "-d",
        name,
    ]


def test_certbot_obtains_renews_and_revokes_with_http01(
    served: tuple[ServedAcme, int], tmp_path: Path
) -> None:
    acme, port = served
    env = acme.client_env()
    eab = acme.new_eab()
    name = f"www.{acme.domain}"

    done = run(
        certonly(acme, port, tmp_path, name, "--eab-kid", eab.kid, "--eab-hmac-key", eab.hmac_key),
        env,
        tmp_path,
    )
    assert done.returncode == 0, said(done, acme)
    live = tmp_path / "config" / "live" / name
    archive = tmp_path / "config" / "archive" / name
    first = assert_issued(acme, live / "cert.pem", live / "chain.pem", [name])

    # A forced renewal: a new order, validated again by the standalone server.
    done = run(
        [*certbot(tmp_path), "renew", "--force-renewal", "--no-random-sleep-on-renew"],
        env,
        tmp_path,
    )
    assert done.returncode == 0, said(done, acme)
    second = assert_issued(acme, live / "cert.pem", live / "chain.pem", [name])
    assert second.serial_number != first.serial_number
    assert (archive / "cert1.pem").exists() and (archive / "cert2.pem").exists()
    assert_status(acme, archive / "cert1.pem", archive / "chain1.pem", "good")

    # The audit log names the entity for each order, and each certificate came from ACME.
    entries = acme.audit()
    orders = [
        entry
        for entry in entries
        if entry["event_type"] == "acme_order_created" and entry["detail"]["names"] == [name]
    ]
    assert len(orders) == 2
    assert all(entry["detail"]["national_id"] == acme.national_id for entry in orders)
    issued = {
        entry["detail"]["serial"]: entry["actor_type"]
        for entry in entries
        if entry["event_type"] == "certificate_issued"
    }
    for certificate in (first, second):
        assert issued.get(serial_hex(certificate.serial_number)) == "acme-account", issued

    # Revocation by the account key (RFC 8555 §7.6) ...
    done = run(
        [
            *certbot(tmp_path),
            "revoke",
            "--server",
            acme.directory,
            "--cert-path",
            str(live / "cert.pem"),
            "--reason",
            "superseded",
            "--no-delete-after-revoke",
        ],
        env,
        tmp_path,
    )
    assert done.returncode == 0, said(done, acme)
    assert_status(acme, live / "cert.pem", live / "chain.pem", "revoked")
    assert_status(acme, archive / "cert1.pem", archive / "chain1.pem", "good")

    # ... and by the certificate's own key, signing the request with it (§7.6).
    done = run(
        [
            *certbot(tmp_path),
            "revoke",
            "--server",
            acme.directory,
            "--cert-path",
            str(archive / "cert1.pem"),
            "--key-path",
            str(archive / "privkey1.pem"),
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ],
        env,
        tmp_path,
    )
    assert done.returncode == 0, said(done, acme)
    assert_status(acme, archive / "cert1.pem", archive / "chain1.pem", "revoked")

    # The account's contact is changed, then the account is deactivated (§7.3.2, §7.3.6).
    contact = f"hostmaster@{acme.domain}"
    server = ["--server", acme.directory]
    done = run([*certbot(tmp_path), "update_account", *server, "-m", contact], env, tmp_path)
    assert done.returncode == 0, said(done, acme)
    done = run([*certbot(tmp_path), "unregister", *server], env, tmp_path)
    assert done.returncode == 0, said(done, acme)
    account = orders[0]["actor_id"].removeprefix("acme:")
    changes = [
        entry["operation"]
        for entry in acme.audit()
        if entry["event_type"] == "acme_account" and entry["detail"]["account_id"] == account
    ]
    assert changes == ["create", "update_contact", "deactivate"], changes


def test_attack_account_without_eab_is_refused(
    served: tuple[ServedAcme, int], tmp_path: Path
) -> None:
    acme, _ = served
    # The directory says external account binding is required, so certbot stops ...
    done = run(
        [
            *certbot(tmp_path),
            "register",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--server",
            acme.directory,
        ],
        acme.client_env(),
        tmp_path,
    )
    assert done.returncode != 0
    assert "external account binding" in (done.stdout + done.stderr).lower(), said(done)
    assert not list((tmp_path / "config").glob("accounts/*/*/*/*/regr.json"))
    # ... and a client that ignores the directory is refused by the server (§7.3.4).
    trust = ssl.create_default_context(cafile=str(acme.tls.root))
    with httpx.Client(proxy=acme.proxy.url, verify=trust, timeout=30) as http:
        answer = AcmeClient(http, acme.directory).new_account(check=False)
    assert answer.status_code in (400, 401, 403), answer.text
    assert answer.json()["type"] == "urn:ietf:params:acme:error:externalAccountRequired"


def test_attack_forged_eab_mac_is_refused(served: tuple[ServedAcme, int], tmp_path: Path) -> None:
    acme, _ = served
    eab = acme.new_eab()
    forged = ("A" if eab.hmac_key[0] != "A" else "B") + eab.hmac_key[1:]
    done = run(
        [
            *certbot(tmp_path),
            "register",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--server",
            acme.directory,
            "--eab-kid",
            eab.kid,
            "--eab-hmac-key",
            forged,
        ],
        acme.client_env(),
        tmp_path,
    )
    assert done.returncode != 0
    assert "external account binding" in (done.stdout + done.stderr).lower(), said(done)
    # The key was not spent by the forgery: its owner can still register with it.
    done = run(
        [
            *certbot(tmp_path / "owner"),
            "register",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--server",
            acme.directory,
            "--eab-kid",
            eab.kid,
            "--eab-hmac-key",
            eab.hmac_key,
        ],
        acme.client_env(),
        tmp_path,
    )
    assert done.returncode == 0, said(done, acme)


def test_attack_name_outside_the_entitys_policy_is_refused(
    served: tuple[ServedAcme, int], tmp_path: Path
) -> None:
    acme, port = served
    eab = acme.new_eab()
    # Another agency's name: the DNS would even point it at certbot, but the entity's
    # service policy does not list it, so no order is made and nothing is validated.
    name = "www.another-agency.example.org"
    acme.dns.hosts[name] = "127.0.0.71"
    done = run(
        certonly(acme, port, tmp_path, name, "--eab-kid", eab.kid, "--eab-hmac-key", eab.hmac_key),
        acme.client_env(),
        tmp_path,
    )
    assert done.returncode != 0
    # Debian's certbot 2.1 on Python 3.11 prints "AttributeError: can't set attribute"
    # for any ACME error (certbot/certbot#9539, fixed in 2.2); the problem it parsed
    # from the server is in its debug log.
    log = (tmp_path / "logs" / "letsencrypt.log").read_text()
    refusal = "acme.messages.Error: urn:ietf:params:acme:error:rejectedIdentifier"
    assert refusal in log, said(done, acme)
    assert f"Problem for {name}: urn:ietf:params:acme:error:rejectedIdentifier" in log
    assert not (tmp_path / "config" / "live" / name).exists()
    assert not [query for query in acme.dns.queries if query[1] == name]  # never validated
    refused = [entry for entry in acme.audit() if entry["event_type"] == "acme_order_refused"]
    assert any(name in json.dumps(entry["detail"]) for entry in refused), refused
