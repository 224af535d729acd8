"""Certificate status figures: CRL build+sign time, OCSP responses per second over HTTP.

    .venv/bin/python bench/bench_ca_status.py                 # everything
    .venv/bin/python bench/bench_ca_status.py --crl-only      # just the CRL timings
    .venv/bin/python bench/bench_ca_status.py --ocsp-only --workers 2 --duration 10
    .venv/bin/python bench/bench_ca_status.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

CRL: ``ca.crl.build_crl`` with 100,000 and 1,000,000 revoked entries (random
127-bit serials, reasons and invalidity dates mixed as in practice), signed by
a P-256 issuing CA key as ``hoviyat ca init`` makes it; also the time to read
100,000 revoked rows from SQLite and publish through ``CRLPublisher``.
Targets (issue 3): 1,000,000 entries in under 15 s.

OCSP: a throwaway data directory (SQLite, file CA keys) served by uvicorn on
loopback, ``wrk`` POSTing one DER request (no nonce: RFC 5019 style, the
cacheable case) and, separately, the same request with a nonce (signed fresh
each time). Target: at least 5,000 responses per second.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509 import ocsp  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from ca.crl import KeySigner, RevokedEntry, build_crl  # noqa: E402
from ca.revocation import RevocationReason  # noqa: E402


def _ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench issuing CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _entries(count: int) -> list[RevokedEntry]:
    rng = random.Random(1)
    now = datetime.now(UTC).replace(microsecond=0)
    reasons = [
        RevocationReason.unspecified,
        RevocationReason.keyCompromise,
        RevocationReason.superseded,
        RevocationReason.cessationOfOperation,
        RevocationReason.affiliationChanged,
    ]
    entries = []
    for i in range(count):
        revoked_at = now - timedelta(seconds=rng.randrange(90 * 86400))
        reason = reasons[i % len(reasons)]
        invalidity = (
            revoked_at - timedelta(hours=1) if reason is RevocationReason.keyCompromise else None
        )
        entries.append(
            RevokedEntry(secrets.randbits(127) | (1 << 100), revoked_at, reason, invalidity)
        )
    return entries


def bench_crl(sizes: list[int]) -> None:
    issuer, key = _ca()
    signer = KeySigner(key)
    now = datetime.now(UTC).replace(microsecond=0)
    for size in sizes:
        entries = _entries(size)
        started, cpu = time.perf_counter(), time.process_time()
        der = build_crl(
            issuer=issuer,
            signer=signer,
            entries=entries,
            crl_number=1,
            this_update=now,
            next_update=now + timedelta(days=7),
        )
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        parsed = x509.load_der_x509_crl(der)
        valid = parsed.is_signature_valid(key.public_key())
        check = time.perf_counter() - started
        print(
            f"CRL build+sign {size:>9,} entries: {elapsed:6.2f} s wall, {cpu:6.2f} s CPU "
            f"({size / elapsed:,.0f} entries/s wall), {len(der) / 1e6:.1f} MB, "
            f"signature valid={valid} (parse+verify {check:.2f} s)"
        )


def _database_url(database_url: str, directory: str, tag: str) -> str:
    """A fresh schema of ``database_url`` (PostgreSQL), or SQLite in ``directory``."""
    if not database_url:
        return f"sqlite:///{directory}/bench.db"
    from common import postgres_schema_url

    return postgres_schema_url(database_url, f"hv_bench_status_{tag}_{os.getpid()}")


def bench_crl_publisher(count: int, database_url: str = "") -> None:
    """Read ``count`` revoked rows from the database and publish through CRLPublisher."""
    from sqlalchemy import insert

    from ca.keys.files import FileKeyStore
    from ca.serials import serial_hex
    from idp.pki.crl_publisher import CRLPublisher
    from idp.pki.hierarchy import Hierarchy
    from idp.storage.certificates import CertificateRecord
    from idp.storage.engine import Database
    from idp.storage.migrate import upgrade

    with tempfile.TemporaryDirectory() as directory:
        url = _database_url(database_url, directory, "crl")
        upgrade(url)
        db = Database(url)
        hierarchy = Hierarchy(db, FileKeyStore(Path(directory) / "keys", b"bench"), "http://b")
        hierarchy.init()
        ca = hierarchy.issuing_ca("persons")
        now = datetime.now(UTC).replace(microsecond=0)
        rows = [
            {
                "serial_hex": serial_hex(entry.serial),
                "issuer_ca": ca.name,
                "issuer_key_id": ca.key_id,
                "profile": "person-authentication",
                "status": "revoked",
                "subject": "CN=bench",
                "spki_sha256": "00" * 32,
                "not_before": now - timedelta(days=100),
                "not_after": now + timedelta(days=300),
                "requested_by": "bench",
                "tracking_code": "BENCH",
                "created_at": now,
                "revoked_at": entry.revoked_at,
                "revocation_reason": entry.reason.name,
                "invalidity_date": entry.invalidity_date,
            }
            for entry in _entries(count)
        ]
        with db.session() as session:
            for start in range(0, len(rows), 20_000):
                session.execute(insert(CertificateRecord), rows[start : start + 20_000])
        publisher = CRLPublisher(db, hierarchy)
        started, cpu = time.perf_counter(), time.process_time()
        record = publisher.current(publisher.resolve("persons"))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"CRL publish from SQLite {count:>9,} rows: {elapsed:6.2f} s wall, {cpu:6.2f} s CPU "
            f"(query + build + sign + store), {record.entries:,} entries, "
            f"{len(record.der) / 1e6:.1f} MB"
        )
        db.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, deadline: float) -> None:
    import httpx

    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start")


def _wrk(url: str, body: Path, duration: int, connections: int, threads: int) -> float:
    script = body.with_suffix(".lua")
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/ocsp-request"\n'
        f'local f = io.open("{body}", "rb")\n'
        'wrk.body = f:read("*all")\n'
        "f:close()\n"
    )
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if errors:
        print(f"  wrk saw {errors.group(1)} non-2xx answers")
    return float(match.group(1)) if match else 0.0


def bench_ocsp(workers: int, duration: int, connections: int, database_url: str = "") -> None:
    import httpx

    from ca.keys import open_keystore
    from ca.settings import CASettings
    from idp.cli.setup import initialise
    from idp.pki.hierarchy import Hierarchy
    from idp.settings import Settings
    from idp.storage.engine import Database
    from verifiers.registry.synthetic import seed

    if shutil.which("wrk") is None:
        print("OCSP: wrk is not installed; skipped")
        return
    directory = Path(tempfile.mkdtemp(prefix="hoviyat-bench-"))
    port = _free_port()
    environment = {
        **os.environ,
        "HOVIYAT_DATA_DIR": str(directory),
        "HOVIYAT_ISSUER": f"http://127.0.0.1:{port}",
        "HOVIYAT_CA_PASSPHRASE": "bench passphrase",
        "HOVIYAT_LOG_LEVEL": "WARNING",
    }
    if database_url:
        environment["HOVIYAT_DATABASE_URL"] = _database_url(database_url, str(directory), "ocsp")
    os.environ.update(environment)
    seed(directory / "registry.db", persons=20, entities=5, seed=1)
    settings = Settings()
    initialise(settings, seed_registry=False)
    db = Database(settings.resolved_database_url)
    hierarchy = Hierarchy(db, open_keystore(CASettings(), directory), settings.issuer)
    hierarchy.init()
    ca = hierarchy.issuing_ca("persons")
    sys.path.insert(0, str(ROOT / "tests" / "ca"))
    from status_helpers import issue_leaf

    leaf = issue_leaf(db, ca)
    db.dispose()
    plain = directory / "request.der"
    plain.write_bytes(
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, ca.certificate, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    with_nonce = directory / "request-nonce.der"
    with_nonce.write_bytes(
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, ca.certificate, hashes.SHA1())
        .add_extension(x509.OCSPNonce(secrets.token_bytes(16)), critical=False)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "idp.asgi:app",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=environment,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/ocsp"
        _wait(f"http://127.0.0.1:{port}/health", time.monotonic() + 60)
        for _ in range(workers * 4):  # load the responders in every worker
            answer = httpx.post(url, content=plain.read_bytes(), timeout=60)
        status = ocsp.load_der_ocsp_response(answer.content)
        assert status.certificate_status == ocsp.OCSPCertStatus.GOOD, status.response_status
        threads = min(2, os.cpu_count() or 1)
        # warm every worker up (each loads its responders on its first request)
        _wrk(url, with_nonce, 3, connections, threads)
        rate = _wrk(url, plain, duration, connections, threads)
        print(
            f"OCSP over HTTP, no nonce (cached answer, row read per request): {rate:,.0f} "
            f"responses/s ({workers} uvicorn worker(s), {connections} connections, {duration} s)"
        )
        rate = _wrk(url, with_nonce, duration, connections, threads)
        print(
            f"OCSP over HTTP, with nonce (signed per request):               {rate:,.0f} "
            f"responses/s ({workers} uvicorn worker(s), {connections} connections, {duration} s)"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crl-only", action="store_true")
    parser.add_argument("--ocsp-only", action="store_true")
    parser.add_argument("--sizes", default="100000,1000000", help="CRL sizes, comma-separated")
    parser.add_argument("--publisher-rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; default SQLite")
    options = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"cpus: {os.cpu_count()}, load average {load:.1f}, python {sys.version.split()[0]}")
    print("(wall times on a shared machine; CPU time is this process's own work)")
    if not options.ocsp_only:
        bench_crl([int(size) for size in options.sizes.split(",")])
        if options.publisher_rows:
            bench_crl_publisher(options.publisher_rows, options.database_url)
    if not options.crl_only:
        bench_ocsp(options.workers, options.duration, options.connections, options.database_url)


if __name__ == "__main__":
    main()
