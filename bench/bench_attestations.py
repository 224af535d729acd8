"""Attestations issued and verified per second on one core (targets: 2,000 and 3,000).

Run: ``.venv/bin/python bench/bench_attestations.py [--seconds 3] [--database]
[--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]``

- issued/s: both forms (JWT + SD-JWT, two ES256 signatures) of an attestation
  with seven facts and an age threshold, the signer's chain in ``x5c``;
- issued/s with --database: the same plus the status entry, the attestation
  row and its audit entry, one transaction each (SQLite, or PostgreSQL with
  ``--database-url``, in a fresh schema);
- verified/s (offline): the SD-JWT with all its Disclosures, and the JWT form,
  chain validated once and then cached as a receiver would.

Each line gives wall-clock and CPU-time rates: on a busy shared machine the
second is the one-core figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "attestations"))

from attest_helpers import CITIZEN
from attest_pki import build_pki

from idp.attestations.claims import PERSON_FACTS, FactSelection
from idp.attestations.issuer import AttestationIssuer, AttestationRequest, issue
from idp.attestations.signing import AttestationSigner
from idp.attestations.verifier import AttestationVerifier
from idp.storage.engine import Database
from idp.storage.migrate import upgrade

PERSON = CITIZEN
REQUEST = AttestationRequest("bench", FactSelection.of(PERSON_FACTS, age_over=[18]))
LEVEL = "http://eidas.europa.eu/LoA/substantial"


def rate(label: str, seconds: float, step: Callable[[int], object]) -> float:
    """Operations per second of wall time, and per second of this process's CPU time.

    On a shared machine the wall-clock figure includes time spent waiting for a
    core; the CPU-time figure is what one dedicated core would do.
    """
    step(0)  # warm caches (chain validation, imports)
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            step(count)
            count += 1
    cpu = time.process_time() - cpu_start
    print(
        f"{label:<42} {count / elapsed:>8,.0f} /s wall  {count / cpu:>8,.0f} /s per CPU-second"
        f"  ({count} in {elapsed:.1f} s)"
    )
    return count / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--database", action="store_true", help="also time issuing with storage")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; default SQLite")
    args = parser.parse_args()

    pki = build_pki()
    signer = AttestationSigner(pki.leaf_key, (pki.leaf, pki.issuing))
    issuer = AttestationIssuer(signer, "https://hoviyat.example")
    now = datetime.now(UTC).replace(microsecond=0)

    def sign(i: int) -> object:
        return issuer.sign(
            PERSON,
            REQUEST,
            level=LEVEL,
            attestation_id=f"bench-{i}",
            tracking_code="01JBENCH00000000000000000",
            status=(1, i % 100_000),
            issued_at=now,
        )

    issued = issuer.sign(
        PERSON,
        REQUEST,
        level=LEVEL,
        attestation_id="bench",
        tracking_code="01JBENCH00000000000000000",
        status=(1, 1),
        issued_at=now,
    )
    print(f"SD-JWT {len(issued.sd_jwt)} chars, JWT {len(issued.jwt)} chars, x5c of 2 certificates")
    rate("issued (JWT + SD-JWT, 2 signatures)", args.seconds, sign)

    if args.database:
        with tempfile.TemporaryDirectory() as scratch:
            if args.database_url:
                from common import postgres_schema_url

                url = postgres_schema_url(args.database_url, f"hv_bench_att_{os.getpid()}")
            else:
                url = f"sqlite:///{scratch}/bench.db"
            upgrade(url)
            database = Database(url)

            def persist(_i: int) -> object:
                with database.session() as session:
                    return issue(session, issuer, PERSON, REQUEST, level=LEVEL, pepper=b"p" * 32)

            kind = "PostgreSQL" if args.database_url else "SQLite"
            rate(f"issued + stored ({kind}, one txn each)", args.seconds, persist)
            database.dispose()

    verifier = AttestationVerifier([pki.root])
    later = now + timedelta(seconds=1)
    rate(
        "verified offline: SD-JWT, 8 disclosures",
        args.seconds,
        lambda _i: verifier.verify(issued.sd_jwt, now=later),
    )
    rate(
        "verified offline: JWT form",
        args.seconds,
        lambda _i: verifier.verify(issued.jwt, now=later),
    )
    assert verifier.verify(issued.sd_jwt, now=later).valid


if __name__ == "__main__":
    main()
