"""openid-client v6 (Node, OpenID-certified) as a back-office client with mutual TLS
(RFC 8705), through a real nginx in front of ``hoviyat serve`` (served_mtls.py).

An independent client library, not written here, discovers the server, sees
``tls_client_auth`` and ``tls_client_certificate_bound_access_tokens``
advertised, authenticates at /token with the certificate Hoviyat's organisations
CA issued its legal entity (node's own TLS holds the key), and calls the
verification API with its certificate-bound token; the same token over a
connection without the certificate is refused. A certificate of another entity
does not authenticate the client. Skipped with the reason when node, nginx or
the package cannot be had.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mtls_support import active_entities
from node_support import node_with
from served_mtls import (
    NGINX,
    Served,
    a_person,
    claims_of,
    client_certificate,
    run_cli,
    served_behind_nginx,
)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (/usr/sbin/nginx)")

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture
def served(tmp_path: Path, database_url: str, synthetic_registry_path: Path) -> Iterator[Served]:
    with served_behind_nginx(tmp_path, database_url, synthetic_registry_path) as running:
        yield running


def _register(served: Served, subject_dn: str) -> str:
    created = json.loads(
        run_cli(
            served.env, "clients", "create", "--name", "Agency back office (openid-client)",
            "--service", "demo-bank-kyc", "--auth-method", "tls_client_auth",
            "--tls-client-auth-subject-dn", subject_dn, "--tls-certificate-bound", "--json",
        )
    )  # fmt: skip
    return str(created["client_id"])


def _drive(node: str, folder: Path, settings: dict[str, Any]) -> dict[str, Any]:
    path = folder / "mtls-rp.json"
    path.write_text(json.dumps(settings))
    done = subprocess.run(
        [node, str(NODE_DIR / "mtls.mjs"), str(path)],
        capture_output=True, text=True, timeout=120, cwd=NODE_DIR,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_openid_client_uses_tls_client_auth_and_a_bound_token(
    served: Served, synthetic_registry_path: Path
) -> None:
    node = node_with(NODE_DIR, "openid-client")
    entity = active_entities(synthetic_registry_path, 1)[0]
    cert, key, leaf = client_certificate(served, entity)
    client_id = _register(served, leaf.subject.rfc4514_string())
    answer = _drive(
        node,
        served.folder,
        {
            "issuer": served.https,
            "client_id": client_id,
            "cert": str(cert),
            "key": str(key),
            "resource": {
                "url": f"{served.https}/v1/persons/verify",
                "body": a_person(synthetic_registry_path),
            },
        },
    )
    assert answer["ok"], answer
    assert "x5t#S256" in claims_of(answer["tokens"]["access_token"])["cnf"]
    assert answer["resource"]["status"] == 200, answer["resource"]
    assert answer["bare"]["status"] == 401, answer["bare"]


def test_attack_openid_client_with_another_entitys_certificate(
    served: Served, synthetic_registry_path: Path
) -> None:
    node = node_with(NODE_DIR, "openid-client")
    first, second = active_entities(synthetic_registry_path, 2)
    _cert, _key, leaf = client_certificate(served, first)
    client_id = _register(served, leaf.subject.rfc4514_string())
    other_cert, other_key, _ = client_certificate(served, second, "other-entity")
    answer = _drive(
        node,
        served.folder,
        {"issuer": served.https, "client_id": client_id, "cert": str(other_cert),
         "key": str(other_key)},
    )  # fmt: skip
    assert not answer["ok"], answer
    assert answer["error"]["error"] == "invalid_client", answer
