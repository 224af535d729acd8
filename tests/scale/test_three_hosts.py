"""Three ``hoviyat serve`` hosts behind deploy/nginx over one PostgreSQL (issue 17).

What must hold across hosts, raced from outside: a code and a refresh token are
spent once whichever hosts they reach at the same moment; a rate limit counts
every host's requests; a revocation made at one host turns every host's OCSP
answer to "revoked" at once (the stated bound is zero: each answer reads the
certificate's row, ``idp/pki/ocsp_responder.py``). And a host that dies under
load costs only its own in-flight requests: the others keep answering, every
acknowledged verification has its audit record, and the audit log verifies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cluster import NGINX, Cluster, cluster, drop_schema, scratch_schema
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from served import HOVIYAT, person_bodies
from sqlalchemy import create_engine, text

from idp.audit.verify import verify_export
from verifiers.registry.synthetic import SyntheticRegistry

PG_URL = os.environ.get("HOVIYAT_TEST_DATABASE_URL", "")
pytestmark = [
    pytest.mark.skipif(
        not PG_URL, reason="HOVIYAT_TEST_DATABASE_URL is unset: the hosts share PostgreSQL"
    ),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (/usr/sbin/nginx)"),
]

PORTAL = "demo-portal"
REDIRECT_URI = "http://127.0.0.1:9000/callback"
SCOPE = "openid profile"
# The demo bank's policy: 60 verifications of one person per client and window.
PER_SUBJECT_LIMIT = 60


def _schema_name(tag: str) -> str:
    return f"hv_scale_{tag}_{os.getpid()}"


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the race tests of this module (starting hosts costs seconds)."""
    folder = tmp_path_factory.mktemp("three-hosts")
    schema = _schema_name("races")
    url = scratch_schema(PG_URL, schema)
    registry = folder / "registry.db"
    from verifiers.registry.synthetic import seed

    seed(registry, persons=200, entities=10, seed=17)
    try:
        # A window of an hour: the rate-limit race must not straddle two windows.
        with cluster(folder, url, registry, HOVIYAT_RATE_LIMIT_WINDOW_SECONDS="3600") as made:
            yield made
    finally:
        drop_schema(PG_URL, schema)


def _registry(made: Cluster) -> Path:
    return Path(made.env["HOVIYAT_REGISTRY_PATH"])


def _living_person(made: Cluster, skip: int) -> tuple[str, str]:
    source = SyntheticRegistry(_registry(made))
    try:
        alive = [
            (person.national_code, person.birth_date.isoformat())
            for person, _ in source.iter_persons(200)
            if person.alive
        ]
    finally:
        source.close()
    return alive[skip]


def _remember_consent(made: Cluster, national_code: str) -> None:
    """Consent given earlier, so the login below is identify → back to the app."""
    from idp.login.consent import remember_consent
    from idp.oidc.claims import consent_claims
    from idp.storage.engine import Database
    from policies.service_policy import load_service_policies

    policy = load_service_policies()["demo-tax-portal"]
    database = Database(made.database_url)
    try:
        with database.session() as session:
            remember_consent(
                session, national_code, PORTAL, consent_claims(SCOPE.split(), {}, policy)
            )
    finally:
        database.dispose()


def _code(made: Cluster, person: tuple[str, str]) -> tuple[str, str]:
    """A citizen logs in through nginx at level low; the code and its PKCE verifier."""
    _remember_consent(made, person[0])
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code", "client_id": PORTAL, "redirect_uri": REDIRECT_URI,
        "scope": SCOPE, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256",
    }  # fmt: skip
    with made.browser() as browser:
        page = browser.get("/authorize", params=params)
        while page.headers.get("location", "").startswith("/"):
            page = browser.get(page.headers["location"])
        assert page.status_code == 200, page.text[:500]
        form = _hidden_fields(page.text)
        form.update({"national_code": person[0], "birth_date": person[1]})
        answer = browser.post("/login/identify", data=form)
        while answer.headers.get("location", "").startswith("/"):
            answer = browser.get(answer.headers["location"])
    location = answer.headers.get("location", "")
    assert location.startswith(REDIRECT_URI), (answer.status_code, answer.text[:500])
    return parse_qs(urlsplit(location).query)["code"][0], verifier


def _hidden_fields(page: str) -> dict[str, str]:
    import re

    pattern = r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"'
    return dict(re.findall(pattern, page))


def _race(made: Cluster, call: Callable[[str], httpx.Response]) -> list[httpx.Response]:
    """``call(host_url)`` at every host at the same moment; the answers in host order."""
    barrier = threading.Barrier(len(made.hosts))
    answers: list[httpx.Response | None] = [None] * len(made.hosts)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = call(made.hosts[index].url)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(made.hosts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def _statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(answer.status_code for answer in answers)


def test_attack_one_code_redeemed_at_three_hosts_at_once_is_spent_once(three: Cluster) -> None:
    code, verifier = _code(three, _living_person(three, 0))
    secret = three.secrets[PORTAL]
    answers = _race(
        three,
        lambda host: httpx.post(
            f"{host}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(PORTAL, secret),
            timeout=30,
        ),
    )
    assert _statuses(answers) == Counter({200: 1, 400: 2}), [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 400):
        assert refused.json()["error"] == "invalid_grant"


def test_attack_one_refresh_token_spent_at_three_hosts_at_once_forks_nothing(
    three: Cluster,
) -> None:
    code, verifier = _code(three, _living_person(three, 1))
    secret = three.secrets[PORTAL]
    first = httpx.post(
        f"{three.hosts[0].url}/token",
        data={"grant_type": "authorization_code", "code": code,
              "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        auth=(PORTAL, secret), timeout=30,
    )  # fmt: skip
    assert first.status_code == 200, first.text
    refresh_token = first.json()["refresh_token"]

    def refresh(host: str, token: str = refresh_token) -> httpx.Response:
        return httpx.post(
            f"{host}/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            auth=(PORTAL, secret),
            timeout=30,
        )

    answers = _race(three, refresh)
    assert _statuses(answers) == Counter({200: 1, 400: 2}), [a.text for a in answers]
    # The loser's replay is a stolen-token signal (RFC 9700 §4.14.2): whatever
    # the winner got may not outlive it, on any host.
    winner = next(a for a in answers if a.status_code == 200).json()["refresh_token"]
    later = [refresh(host.url, winner) for host in three.hosts]
    assert sum(answer.status_code == 200 for answer in later) <= 1


def test_per_subject_rate_limit_counts_every_hosts_requests(three: Cluster) -> None:
    body = person_bodies(_registry(three), 1)[0]
    token = _bank_token(three)
    threads, asked = 6, PER_SUBJECT_LIMIT + 60
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def post(index: int) -> None:
        for turn in range(index, asked, threads):
            host = three.hosts[turn % len(three.hosts)].url
            answer = httpx.post(
                f"{host}/v1/persons/verify",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            with lock:
                statuses[answer.status_code] += 1

    workers = [threading.Thread(target=post, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert set(statuses) <= {200, 429}, statuses
    # Bound (idp/ratelimit.py): a host learns the others' counts at its next
    # commit, so at most the requests in flight elsewhere slip past the limit.
    assert PER_SUBJECT_LIMIT <= statuses[200] <= PER_SUBJECT_LIMIT + threads, statuses
    assert statuses[429] == asked - statuses[200]


def _bank_token(made: Cluster, client: str = "demo-bank") -> str:
    answer = httpx.post(
        f"{made.url}/token",
        data={"grant_type": "client_credentials"},
        auth=(client, made.secrets[client]),
        verify=False,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _person_certificate(
    made: Cluster, national_code: str
) -> tuple[x509.Certificate, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scale test")]))
        .sign(key, hashes.SHA256())
    )
    answer = httpx.post(
        f"{made.url}/v1/certificates",
        json={
            "csr": csr.public_bytes(Encoding.PEM).decode(),
            "profile": "person-authentication",
            "subject": {"national_code": national_code},
            "reason": "scale test",
        },
        headers={"Authorization": f"Bearer {_bank_token(made, 'demo-admin')}"},
        verify=False,
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    certificate = x509.load_pem_x509_certificate(body["certificate"].encode())
    return certificate, x509.load_pem_x509_certificate(body["chain"][0].encode())


def _ocsp_status(host: str, request: bytes, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    answer = httpx.post(
        f"{host}/ocsp",
        content=request,
        headers={"Content-Type": "application/ocsp-request"},
        timeout=30,
    )
    assert answer.status_code == 200
    parsed = ocsp.load_der_ocsp_response(answer.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return parsed.certificate_status


def test_revocation_at_one_host_is_revoked_in_every_hosts_ocsp_at_once(three: Cluster) -> None:
    certificate, issuer = _person_certificate(three, _living_person(three, 2)[0])
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
    )
    # Every host answers "good" first, and keeps that signed answer in its cache.
    for host in three.hosts:
        assert _ocsp_status(host.url, request, issuer) == ocsp.OCSPCertStatus.GOOD
    revoked = httpx.post(
        f"{three.hosts[0].url}/v1/certificates/{certificate.serial_number:x}/revoke",
        json={"reason": "key_compromise"},
        headers={"Authorization": f"Bearer {_bank_token(three, 'demo-admin')}"},
        timeout=30,
    )
    assert revoked.status_code == 200, revoked.text
    # No delay: the next answer of every host, cached or not, says revoked.
    for host in three.hosts:
        assert _ocsp_status(host.url, request, issuer) == ocsp.OCSPCertStatus.REVOKED


def _verification_records(database_url: str) -> Counter[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT tracking_code, COUNT(*) FROM audit_entries "
                    "WHERE event_type = 'verification' GROUP BY tracking_code"
                )
            ).all()
    finally:
        engine.dispose()
    return Counter({code: count for code, count in rows})


class _Load:
    """Threads verifying through nginx, keeping each acknowledged tracking code."""

    def __init__(self, made: Cluster, token: str, bodies: list[dict[str, str]]) -> None:
        self.made, self.token, self.bodies = made, token, bodies
        self.acknowledged: list[tuple[float, str]] = []
        self.failures: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(6)]

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.made.url, verify=False, timeout=30) as client:
            turn = index
            while not self._stop.is_set():
                body = self.bodies[turn % len(self.bodies)]
                turn += 6
                try:
                    answer = client.post("/v1/persons/verify", json=body, headers=headers)
                except httpx.TransportError as error:
                    self.failures[type(error).__name__] += 1
                    continue
                if answer.status_code == 200:
                    self.acknowledged.append((time.monotonic(), answer.json()["tracking_code"]))
                else:
                    self.failures[str(answer.status_code)] += 1


def test_a_host_killed_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    schema = _schema_name("kill")
    url = scratch_schema(PG_URL, schema)
    registry = tmp_path / "registry.db"
    from verifiers.registry.synthetic import seed

    seed(registry, persons=300, entities=5, seed=23)
    try:
        with cluster(tmp_path, url, registry) as made:
            bodies = person_bodies(registry, 300)
            with _Load(made, _bank_token(made), bodies) as load:
                time.sleep(3)
                killed_at = time.monotonic()
                made.hosts[0].kill()
                time.sleep(4)
            survivors = [host for host in made.hosts if host.alive()]
            assert len(survivors) == len(made.hosts) - 1
            after = [code for when, code in load.acknowledged if when > killed_at + 0.5]
            assert after, f"nothing answered after the host died: {load.failures}"
            records = _verification_records(url)
            acknowledged = [code for _, code in load.acknowledged]
            assert len(acknowledged) == len(set(acknowledged))
            missing = [code for code in acknowledged if records[code] != 1]
            assert not missing, f"{len(missing)} acknowledged answers lack one audit record"
            # In-flight requests of the dead host may fail; nothing else may.
            assert sum(load.failures.values()) <= 12, load.failures
            export = tmp_path / "audit.jsonl"
            env = {**made.env, "HOVIYAT_DATA_DIR": str(tmp_path / "host-127.0.0.3")}
            subprocess.run(
                [*HOVIYAT, "audit", "export", "--out", str(export)],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            report = verify_export(export.read_bytes().splitlines())
            assert not report.problems, report.problems
            assert json.loads(export.read_bytes().splitlines()[0])
    finally:
        drop_schema(PG_URL, schema)


def _cli(made: Cluster, *arguments: str) -> dict:
    done = subprocess.run(
        [*HOVIYAT, *arguments, "--json"], env=made.env, capture_output=True, check=True
    )
    return dict(json.loads(done.stdout))


def _jwks_kids(host: str, path: str) -> set[str]:
    return {key["kid"] for key in httpx.get(f"{host}{path}", timeout=30).json()["keys"]}


def _publishes(host: str, path: str, kid: str) -> bool:
    return kid in _jwks_kids(host, path)


def _until(seconds: float, condition: Callable[[], bool]) -> float:
    """Seconds until ``condition()`` held; fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - started


# Stated bound (idp/tokens/keyring.py): every worker reloads the ring within
# five seconds, and at once when a token names a kid it does not know.
KEYRING_BOUND_SECONDS = 5.0 + 2.0


def test_a_signing_key_rotation_reaches_every_host_within_the_stated_bound(
    three: Cluster,
) -> None:
    jwks_path = urlsplit(
        httpx.get(f"{three.hosts[0].url}/.well-known/openid-configuration", timeout=30).json()[
            "jwks_uri"
        ]
    ).path
    published = _cli(three, "keys", "rotate", "--force")["published"]
    for host in three.hosts:
        _until(KEYRING_BOUND_SECONDS, partial(_publishes, host.url, jwks_path, published))
    assert _cli(three, "keys", "rotate", "--force")["activated"] == published

    signed: list[str] = []

    def signed_by_published() -> bool:
        token = _bank_token(three)
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        signed.append(token)
        return bool(header["kid"] == published)

    _until(KEYRING_BOUND_SECONDS, signed_by_published)
    token = signed[-1]  # signed by the new key: every host must accept it at once
    body = person_bodies(_registry(three), 3)[2]
    for host in three.hosts:
        answer = httpx.post(
            f"{host.url}/v1/persons/verify",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
