"""Certificate issuance per second from CSRs, and the same CSRs through cfssl.

Run: ``.venv/bin/python bench/bench_ca.py [--count 3000] [--lint-count 200]
[--repeat 3] [--threads 16] [--database-url postgresql+psycopg://.../empty_db]``

What is measured (ECDSA P-256 leaves, person-authentication profile, one
process, SQLite in WAL mode on local disk, CA key in an encrypted file; each
request names a different living person of the synthetic civil registry, so
nothing is answered from a per-subject cache):

- ``single``: one request at a time, the whole registration step (CSR parse
  and signature check, civil-registry lookup) plus issuance: blocked-key check
  and intent row committed, signature, row completed with its audit entry
  committed -- two transactions per certificate, as the CLI issues;
- ``threads``: the same requests from ``--threads`` threads at once through a
  group committer (``Pki.create(..., committer)``): concurrent requests share
  their intent commit and their result commit (fewer commits, more CPU spent on
  threads and savepoints: compare the two figures before wiring it into the server);
- ``batched``: the same work with the database writes grouped 100 requests a
  transaction (``Pki.prepare_many`` + ``issue_orders``), the bulk-issuance path;
- ``lint on``: ``single`` with the pre-signing pkilint lint of a throwaway-key copy;
- ``cfssl``: ``cfssl serve`` (Debian golang-cfssl) on loopback signing the same
  CSRs with a P-256 CA key, one request in flight over a keep-alive connection.
  cfssl keeps no database here and checks no registry; its figures include its
  HTTP and JSON handling, ours (in-process calls) do not.

The pre-made CSRs are moved out of the garbage collector's generations
(``gc.freeze()``) before timing: scanning them is the bench's cost, not the CA's.
Each Hoviyat figure has a database of its own, empty at the start (with
``--database-url`` they share it). Rates are given by wall clock and by this
process's CPU time (all its threads); on a busy shared machine the CPU figure
is the per-core one. Each Hoviyat figure is the best of ``--repeat`` runs (the
median is printed too), since other work on the machine only ever slows a run
down. For cfssl the CPU figure is the server process's own CPU time (from
/proc), all its threads.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ca.keys import open_keystore
from ca.settings import CASettings
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage.certificates import CertificateAuthority
from idp.storage.engine import Database
from idp.storage.group_commit import GroupCommitter
from idp.storage.migrate import upgrade
from verifiers.registry.synthetic import SyntheticRegistry, seed

BATCH = 100
ISSUER = "https://pki.hoviyat.ir"
PEPPER = b"p" * 32


def make_csrs(count: int) -> list[bytes]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    csrs = []
    for _ in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        csrs.append(csr.public_bytes(serialization.Encoding.PEM))
    return csrs


def timed(label: str, count: int, work: Callable[[], None], repeat: int) -> tuple[float, float]:
    """(wall, CPU) rates of the best of ``repeat`` runs, by CPU time."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        runs.append((count / (time.perf_counter() - wall), count / (time.process_time() - cpu)))
    best = max(runs, key=lambda run: run[1])
    median = statistics.median(run[1] for run in runs)
    print(
        f"{label:<34} {count:>6} certs  {best[0]:>8.0f}/s wall  {best[1]:>8.0f}/s CPU"
        f"  (median {median:.0f}/s CPU of {repeat})"
    )
    return best


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process (Linux /proc), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cfssl_rate(
    directory: Path, ca: x509.Certificate, key: ec.EllipticCurvePrivateKey, csrs: list[bytes]
) -> tuple[float, float] | None:
    if shutil.which("cfssl") is None:
        print("cfssl not installed: no comparison")
        return None
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "ca-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    config = {
        "signing": {"default": {"expiry": "17520h", "usages": ["digital signature", "client auth"]}}
    }
    (directory / "config.json").write_text(json.dumps(config))
    port = free_port()
    server = subprocess.Popen(
        [
            "cfssl",
            "serve",
            "-address",
            "127.0.0.1",
            "-port",
            str(port),
            "-loglevel",
            "5",
            "-ca",
            str(directory / "ca.pem"),
            "-ca-key",
            str(directory / "ca-key.pem"),
            "-config",
            str(directory / "config.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/cfssl/sign"
    try:
        with httpx.Client(timeout=10) as client:
            for _ in range(100):
                try:
                    client.get(f"http://127.0.0.1:{port}/api/v1/cfssl/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            first = client.post(url, json={"certificate_request": csrs[0].decode()}).json()
            if not first.get("success"):
                print(f"cfssl refused the CSR: {first.get('errors')}")
                return None

            server_cpu = process_cpu_seconds(server.pid)
            wall = time.perf_counter()
            for csr in csrs:
                response = client.post(url, json={"certificate_request": csr.decode()})
                response.raise_for_status()
            wall = time.perf_counter() - wall
            server_cpu = process_cpu_seconds(server.pid) - server_cpu
            count = len(csrs)
            print(
                f"{'cfssl serve (HTTP, 1 in flight)':<34} {count:>6} certs  "
                f"{count / wall:>8.0f}/s wall  {count / server_cpu:>8.0f}/s CPU (cfssl's own)"
            )
            return count / wall, count / server_cpu
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--lint-count", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument(
        "--database-url",
        default="",
        help="an empty PostgreSQL database to use instead of a temporary SQLite file",
    )
    args = parser.parse_args()
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")

    with tempfile.TemporaryDirectory(prefix="bench-ca-") as temp:
        directory = Path(temp)
        url = args.database_url or f"sqlite:///{directory / 'hoviyat.db'}"
        upgrade(url)
        db = Database(url)
        seed(directory / "registry.db", persons=2000, entities=5, seed=3)
        registry = SyntheticRegistry(directory / "registry.db")
        registries = registry.registries()
        people = [p.national_code for p, _ in registry.iter_persons(2000) if p.alive]
        keys = open_keystore(CASettings(key_backend="file", passphrase="bench"), directory)
        hierarchy = Hierarchy(db, keys, ISSUER)
        hierarchy.init()
        ca_rows = hierarchy.rows()
        databases = [db]

        def pki_on_fresh_database(name: str) -> Pki:
            """Each figure starts from an empty certificates table (SQLite): inserts slow
            down as the table grows, and the figures should not depend on their order."""
            mode_db = db
            if not args.database_url:
                mode_url = f"sqlite:///{directory / f'{name}.db'}"
                upgrade(mode_url)
                mode_db = Database(mode_url)
                databases.append(mode_db)
                with mode_db.session() as session:
                    for row in ca_rows:
                        session.add(CertificateAuthority.model_validate(row.model_dump()))
            return Pki.create(mode_db, Hierarchy(mode_db, keys, ISSUER), registries, PEPPER)

        print(f"making {args.count} P-256 CSRs ...", file=sys.stderr)
        csrs = make_csrs(args.count)
        requests = [
            Request(
                csr=csr,
                profile="person-authentication",
                subject=SubjectReference(national_code=people[i % len(people)]),
                requested_by="bench",
            )
            for i, csr in enumerate(csrs)
        ]
        pki = pki_on_fresh_database("single")
        plain = pki_on_fresh_database("threads")
        committer = GroupCommitter(plain.db)
        served = Pki.create(plain.db, plain.hierarchy, registries, PEPPER, committer)
        bulk = pki_on_fresh_database("batched")
        for warmed in (pki, served, bulk):  # caches: keys, profiles, templates, statements
            warmed.request_certificate(requests[0], lint=False)
        # The thousands of CSRs made above are the bench's own baggage, not a server's:
        # move them out of the cyclic GC's sight, as a server does with its start-up heap.
        gc.collect()
        gc.freeze()

        def single() -> None:
            for request in requests:
                pki.request_certificate(request, lint=False)

        def threaded() -> None:
            def share(start: int) -> None:
                for request in requests[start :: args.threads]:
                    served.request_certificate(request, lint=False)

            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(share, range(args.threads)))

        def batched() -> None:
            for start in range(0, len(requests), BATCH):
                orders = bulk.prepare_many(requests[start : start + BATCH])
                bulk.issue_orders(orders, lint=False)

        def linted() -> None:
            for request in requests[: args.lint_count]:
                pki.request_certificate(request, lint=True)

        backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite (WAL)"
        print(f"Hoviyat issuance, P-256 leaf, {backend}, CA key in an encrypted file")
        repeat = args.repeat
        rates = {
            "single": timed("single, lint off", len(csrs), single, repeat),
            "threads": timed(
                f"{args.threads} threads, group commit, lint off", len(csrs), threaded, repeat
            ),
            "batched": timed(f"batched x{BATCH}, lint off", len(csrs), batched, repeat),
        }
        timed("single, lint on (pkilint)", args.lint_count, linted, 1)
        committer.close()

        persons = hierarchy.issuing_ca("persons")
        ca_key = persons.signer.private_key
        cfssl = cfssl_rate(directory, persons.certificate, ca_key, csrs)  # type: ignore[arg-type]
        if cfssl:
            print(
                "ratios against cfssl serve (HTTP, no database, no registry), per CPU second: "
                "our process's CPU / the cfssl server's CPU; by wall clock: one request in "
                "flight each"
            )
            for label, rate in rates.items():
                print(
                    f"  Hoviyat {label:<8} / cfssl: {rate[1] / cfssl[1]:.2f} per CPU second "
                    f"({rate[1]:.0f} / {cfssl[1]:.0f}), {rate[0] / cfssl[0]:.2f} by wall clock"
                )
        registry.close()
        for database in databases:
            database.dispose()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
