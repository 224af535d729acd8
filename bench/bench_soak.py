"""Soak: minutes of mixed load on ``hoviyat serve --workers 2``, a database outage and a
worker killed inside it.

    .venv/bin/python bench/bench_soak.py                  # 30 minutes, SQLite
    .venv/bin/python bench/bench_soak.py --minutes 3
    .venv/bin/python bench/bench_soak.py --minutes 3 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Load: ``--threads`` Python clients (keep-alive connections), each picking at random
among verifications (``POST /v1/persons/verify``), client-credentials grants, full
OpenID Connect logins (bench/bench_oidc.py's flow, level low), certificate issuance
(``POST /v1/certificates``, person-authentication) and OCSP (``POST /ocsp``).

Half-way through, the database goes away for ``--outage-seconds``: with SQLite a
connection holds an exclusive lock on the file; with ``--database-url`` (a server
URL: a throwaway database is created on it and dropped after) the database is set
``ALLOW_CONNECTIONS false`` and its sessions are ended, then allowed again. Three
seconds into the outage one worker is killed (SIGKILL); the supervisor replaces it.

Prints throughput per minute and errors by kind, the longest request wait, and the
workers' memory (RSS): before the load, after its first minute (caches filled) and at
the end. Targets: the surviving worker's memory grows under 10 % from the end of the
first minute to the end; no request waits longer than ``MAX_WAIT_SECONDS``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from bench_oidc import one_login, prepare, start_hoviyat, stop  # noqa: E402
from common import (  # noqa: E402
    free_port,
    load_average,
    resident_mb,
    settings_env,
    token,
    wait_until_idle,
    worker_pids,
)
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509 import ocsp  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

# An outage of 10 s plus the time to answer what queued behind it.
MAX_WAIT_SECONDS = 15.0
MEMORY_GROWTH_TARGET = 0.10
# Relative weights of the operations in the mix.
MIX = {"verify": 40, "grant": 20, "login": 8, "issue": 4, "ocsp": 28}


@dataclass
class Tokens:
    """Access tokens by client, fetched again when one is refused (they last 5 minutes)."""

    url: str
    credentials: dict[str, tuple[str, str]]
    _tokens: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: str, renew: bool = False) -> str:
        with self._lock:
            if renew or name not in self._tokens:
                self._tokens[name] = token(self.url, *self.credentials[name])
            return self._tokens[name]


@dataclass
class Record:
    started: float
    operation: str
    outcome: str  # "ok", an HTTP status, or a transport error's name
    seconds: float


@dataclass
class Soak:
    url: str
    tokens: Tokens
    persons: list[tuple[str, str]]
    verify_bodies: list[dict[str, str]]
    rp: tuple[str, str]
    csrs: list[str]
    ocsp_request: bytes
    records: list[Record] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def drive(self, seed: int) -> None:
        rng = random.Random(seed)
        operations, weights = zip(*MIX.items(), strict=True)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stopping.is_set():
                operation = rng.choices(operations, weights)[0]
                started = time.monotonic()
                try:
                    outcome = getattr(self, operation)(client, rng)
                except httpx.HTTPStatusError as error:
                    outcome = str(error.response.status_code)
                except httpx.TransportError as error:
                    outcome = type(error).__name__
                except RuntimeError:  # bench_oidc's login did not come back to the client
                    outcome = "login-incomplete"
                self.records.append(Record(started, operation, outcome, time.monotonic() - started))
                if outcome != "ok":
                    time.sleep(0.05)  # a refused client backs off a little

    def _authorised(self, client: httpx.Client, name: str, method: str, path: str,
                    **kwargs: Any) -> httpx.Response:  # fmt: skip
        bearer = self.tokens.get(name)
        answer = client.request(method, path, headers={"Authorization": f"Bearer {bearer}"},
                                **kwargs)  # fmt: skip
        if answer.status_code == 401:
            bearer = self.tokens.get(name, renew=True)
            answer = client.request(method, path, headers={"Authorization": f"Bearer {bearer}"},
                                    **kwargs)  # fmt: skip
        return answer

    @staticmethod
    def _outcome(answer: httpx.Response, expected: int = 200) -> str:
        return "ok" if answer.status_code == expected else str(answer.status_code)

    def verify(self, client: httpx.Client, rng: random.Random) -> str:
        body = rng.choice(self.verify_bodies)
        return self._outcome(self._authorised(client, "bank", "POST", "/v1/persons/verify",
                                              json=body))  # fmt: skip

    def grant(self, client: httpx.Client, rng: random.Random) -> str:
        client_id, secret = self.tokens.credentials["bank"]
        answer = client.post("/token", data={"grant_type": "client_credentials"},
                             auth=(client_id, secret))  # fmt: skip
        return self._outcome(answer)

    def login(self, client: httpx.Client, rng: random.Random) -> str:
        with httpx.Client(base_url=self.url, timeout=60) as browser:
            one_login(browser, *self.rp, rng.choice(self.persons))
        return "ok"

    def issue(self, client: httpx.Client, rng: random.Random) -> str:
        body = {
            "csr": rng.choice(self.csrs),
            "profile": "person-authentication",
            "subject": {"national_code": rng.choice(self.persons)[0]},
        }
        return self._outcome(
            self._authorised(client, "admin", "POST", "/v1/certificates", json=body), 201
        )

    def ocsp(self, client: httpx.Client, rng: random.Random) -> str:
        answer = client.post("/ocsp", content=self.ocsp_request,
                             headers={"Content-Type": "application/ocsp-request"})  # fmt: skip
        if answer.status_code != 200:
            return str(answer.status_code)
        status = ocsp.load_der_ocsp_response(answer.content).response_status
        return "ok" if status == ocsp.OCSPResponseStatus.SUCCESSFUL else f"ocsp-{status.name}"


# --- the database outage -------------------------------------------------------------------


class SqliteOutage:
    """An exclusive lock on the database file: every write waits or fails meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def hold(self, seconds: float) -> None:
        connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            connection.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            connection.execute("ROLLBACK")
        finally:
            connection.close()


class PostgresOutage:
    """A throwaway database that refuses connections for a while (its sessions ended)."""

    def __init__(self, server_url: str) -> None:
        from sqlalchemy import create_engine, text

        self.name = f"soak_{secrets.token_hex(4)}"
        self.admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        self.text = text
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = (
            make_url(server_url).set(database=self.name).render_as_string(hide_password=False)
        )

    def _run(self, *statements: str) -> None:
        with self.admin.connect() as connection:
            for statement in statements:
                connection.execute(self.text(statement))

    def hold(self, seconds: float) -> None:
        self._run(
            f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()",
        )
        try:
            time.sleep(seconds)
        finally:
            self._run(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')

    def drop(self) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()


# --- set-up ----------------------------------------------------------------------------------


def make_csrs(count: int) -> list[str]:
    csrs = []
    for _ in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soak")]))
            .sign(key, hashes.SHA256())
        )
        csrs.append(request.public_bytes(serialization.Encoding.PEM).decode())
    return csrs


def ocsp_request_for(url: str, admin_token: str, csr: str, national_code: str) -> bytes:
    """Issue one certificate; an OCSP request (SHA-1 CertID, as OpenSSL sends) about it."""
    answer = httpx.post(
        f"{url}/v1/certificates",
        json={"csr": csr, "profile": "person-authentication",
              "subject": {"national_code": national_code}},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=60,
    )  # fmt: skip
    answer.raise_for_status()
    issued = answer.json()
    leaf = x509.load_pem_x509_certificate(issued["certificate"].encode())
    issuer = x509.load_pem_x509_certificate(issued["chain"][0].encode())
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    return request.public_bytes(serialization.Encoding.DER)


def verify_bodies(persons: list[tuple[str, str]]) -> list[dict[str, str]]:
    bodies = []
    for index, (national_code, born) in enumerate(persons):
        if index % 5 == 4:  # one in five with a wrong birth date
            year = int(born[:4]) - 1
            born = f"{year}{born[4:]}"
        bodies.append({"national_code": national_code, "birth_date": born})
    return bodies


def hoviyat_cli(settings: Any, *args: str) -> str:
    env = settings_env(settings)
    done = subprocess.run([sys.executable, "-m", "idp.cli", *args], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


# --- report ----------------------------------------------------------------------------------


def minute_line(minute: int, records: list[Record], events: list[str]) -> str:
    ok = sum(1 for r in records if r.outcome == "ok")
    errors = Counter(f"{r.operation}:{r.outcome}" for r in records if r.outcome != "ok")
    by_operation = Counter(r.operation for r in records if r.outcome == "ok")
    mix = " ".join(f"{name} {by_operation[name] / 60:.0f}" for name in MIX)
    longest = max((r.seconds for r in records), default=0.0)
    shown = ", ".join(f"{kind} {count}" for kind, count in errors.most_common(6)) or "none"
    note = f"  [{'; '.join(events)}]" if events else ""
    return (f"minute {minute + 1:2d}: {ok / 60:7.1f} ok/s ({mix}); longest {longest:5.2f} s; "
            f"errors: {shown}{note}")  # fmt: skip


def server_log_summary(path: Path) -> str:
    """The workers' and supervisor's log lines (JSON), counted by level and message."""
    counts: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if line.startswith(("sqlalchemy.", "psycopg.", "RuntimeError", "TimeoutError")):
                counts[f"traceback: {line[:120]}"] += 1
            continue
        if isinstance(entry, dict):
            text = str(entry.get("message", ""))
            error = str(entry.get("exception", ""))
            last = error.strip().splitlines()[-1][:120] if error.strip() else ""
            counts[f"{entry.get('level', '?')} {text[:80]}{' / ' + last if last else ''}"] += 1
    return "; ".join(f"{message} x{count}" for message, count in counts.most_common(8)) or "empty"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the soak")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--outage-seconds", type=float, default=10.0)
    parser.add_argument(
        "--database-url", default=None,
        help="PostgreSQL server URL; a throwaway database is created on it (default: SQLite)",
    )  # fmt: skip
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the server log here")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    postgres = PostgresOutage(args.database_url) if args.database_url else None
    server = None
    try:
        port = free_port()
        setup = prepare(workdir, postgres.url if postgres else None, port)
        settings = setup["settings"]
        url = settings.issuer
        hoviyat_cli(settings, "ca", "init", "--json")
        demo = json.loads((settings.data_dir / "demo-clients.json").read_text())
        server = start_hoviyat(settings, port, workdir)
        wait_until_idle(server.pid)
        tokens = Tokens(url, {"bank": setup["cc"], "admin": ("demo-admin", demo["demo-admin"])})
        csrs = make_csrs(32)
        soak = Soak(
            url, tokens, setup["persons"], verify_bodies(setup["persons"]), setup["rp"], csrs,
            ocsp_request_for(url, tokens.get("admin"), csrs[0], setup["persons"][0][0]),
        )  # fmt: skip
        outage: Any = postgres or SqliteOutage(
            Path(str(make_url(settings.resolved_database_url).database))
        )
        backend = "PostgreSQL" if postgres else "SQLite"
        workers = worker_pids(server.pid)
        victim, survivor = workers[0], workers[-1]
        rss_before = {pid: resident_mb(pid) for pid in workers}
        print(f"soak: {args.minutes:g} min, hoviyat serve --workers 2, {backend}, "
              f"{args.threads} client threads; mix {MIX}")  # fmt: skip
        print(f"load average before: {load_average()} on {os.cpu_count()} cores")
        print("worker RSS before the load: "
              + ", ".join(f"{pid}: {mb:.0f} MB" for pid, mb in rss_before.items()))  # fmt: skip

        start = time.monotonic()
        end = start + args.minutes * 60
        outage_at = start + args.minutes * 30
        events: dict[int, list[str]] = defaultdict(list)
        drivers = [threading.Thread(target=soak.drive, args=(index,), daemon=True)
                   for index in range(args.threads)]  # fmt: skip
        for thread in drivers:
            thread.start()

        def database_outage() -> None:
            minute = int((time.monotonic() - start) // 60)
            events[minute].append(f"database outage {args.outage_seconds:g} s")
            outage.hold(args.outage_seconds)

        def kill_worker() -> None:
            os.kill(victim, signal.SIGKILL)
            minute = int((time.monotonic() - start) // 60)
            events[minute].append(f"worker {victim} killed")

        timers = [
            threading.Timer(outage_at - time.monotonic(), database_outage),
            threading.Timer(outage_at + 3 - time.monotonic(), kill_worker),
        ]
        for timer in timers:
            timer.start()
        rss_warm: dict[int, float] = {}
        printed = 0
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            elapsed_minutes = int((time.monotonic() - start) // 60)
            if elapsed_minutes == 1 and not rss_warm:
                rss_warm = {pid: resident_mb(pid) for pid in worker_pids(server.pid)}
            while printed < elapsed_minutes:
                window = [r for r in list(soak.records)
                          if printed * 60 <= r.started - start < (printed + 1) * 60]  # fmt: skip
                # Each worker's memory as the minute ends: a leak climbs minute
                # after minute, a warm-up (threads, pools, caches) levels off.
                rss = ", ".join(f"{pid}: {resident_mb(pid):.0f}"
                                for pid in worker_pids(server.pid))  # fmt: skip
                print(minute_line(printed, window, events[printed]) + f"; RSS MB {rss}", flush=True)
                printed += 1
        soak.stopping.set()
        for thread in drivers:
            thread.join(timeout=90)
        for timer in timers:
            timer.join()
        rss_end = {pid: resident_mb(pid) for pid in worker_pids(server.pid)}
        if printed * 60 < args.minutes * 60 - 1:
            window = [r for r in soak.records if r.started - start >= printed * 60]
            print(minute_line(printed, window, events[printed]).replace("ok/s", "ok/s*"))

        records = soak.records
        errors = Counter(f"{r.operation}:{r.outcome}" for r in records if r.outcome != "ok")
        longest = max(records, key=lambda r: r.seconds)
        outside = [
            r
            for r in records
            if not outage_at - 1 <= r.started <= outage_at + args.outage_seconds + 5
        ]
        longest_outside = max(outside, key=lambda r: r.seconds) if outside else longest
        print(f"requests: {len(records)}, ok {sum(r.outcome == 'ok' for r in records)}, "
              f"errors {sum(errors.values())}")  # fmt: skip
        print("errors by kind: " + (", ".join(f"{k} {v}" for k, v in errors.most_common())
                                    or "none"))  # fmt: skip
        print(f"longest wait: {longest.seconds:.2f} s ({longest.operation}, "
              f"{longest.started - start:.0f} s in); outside the outage window: "
              f"{longest_outside.seconds:.2f} s ({longest_outside.operation})")  # fmt: skip
        print("worker RSS after minute 1: "
              + ", ".join(f"{pid}: {mb:.0f} MB" for pid, mb in rss_warm.items()))  # fmt: skip
        print("worker RSS at the end:     "
              + ", ".join(f"{pid}: {mb:.0f} MB" for pid, mb in rss_end.items())
              + f" (worker {victim} was killed; {survivor} served throughout)")  # fmt: skip
        base = rss_warm.get(survivor) or rss_before[survivor]
        growth = (rss_end.get(survivor, 0.0) - base) / base
        wait_ok = longest.seconds <= MAX_WAIT_SECONDS
        print(
            f"target memory growth < {MEMORY_GROWTH_TARGET:.0%} (surviving worker, minute 1 "
            f"to end): {growth:+.1%} {'met' if growth < MEMORY_GROWTH_TARGET else 'MISSED'}"
        )
        print(f"target no wait over {MAX_WAIT_SECONDS:g} s: {longest.seconds:.2f} s "
              f"{'met' if wait_ok else 'MISSED'}")  # fmt: skip
        print(f"load average after: {load_average()}")
        stop(server)
        print("server log, by message: " + server_log_summary(workdir / "uvicorn.log"))
        if args.keep_log is not None:
            shutil.copyfile(workdir / "uvicorn.log", args.keep_log)
    finally:
        stop(server)
        if postgres is not None:
            postgres.drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
