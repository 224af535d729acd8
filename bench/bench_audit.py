"""Audit log figures: append rate, sequencing rate, proof latency, checkpoint signing, verify.

    .venv/bin/python bench/bench_audit.py [--appends 20000] [--requests 1000]
        [--entries 1000000] [--big 10000000] [--database-url URL] [--keep DIR]

1. entries appended per second through ``idp.audit.log.append``: one entry per
   transaction (what a verification does) and 1000 per transaction;
2. verification requests per second through the real app (each one an entry);
3. a log of ``--entries`` real entries: sequencing rate, inclusion-proof
   latency, checkpoint signing time, export time and ``hoviyat audit verify``
   time on the export (a separate process, as an auditor runs it);
4. inclusion-proof latency at ``--big`` leaves, the stored tree built directly
   in a SQLite file (leaf hashes made up; the proof code cannot tell).

SQLite files go to a temporary directory (or --keep DIR); --database-url runs
parts 1 and 3 on PostgreSQL instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import spread
from sqlalchemy import insert

from idp.audit import rfc9162, signed_note, tree
from idp.audit.checkpoints import make_checkpoint
from idp.audit.export import export_lines
from idp.audit.log import AuditEvent, append, append_many, subject_hash
from idp.audit.sequencer import read_head, sequence_pending
from idp.storage.engine import Database
from idp.storage.migrate import upgrade
from idp.storage.models import AuditEntry
from idp.tracking import new_tracking_code

KEK = b"k" * 32
PEPPER = b"p" * 32
ORIGIN = "bench.hoviyat/audit"


def event(i: int) -> AuditEvent:
    return AuditEvent(
        tracking_code=new_tracking_code(),
        event_type="verification",
        actor_type="client",
        actor_id=f"client-{i % 50}",
        service_code="demo-bank-kyc",
        legal_basis="bylaw art. 6",
        operation="persons.verify",
        subject_hash=subject_hash(PEPPER, f"{i:010d}"),
        outcome="match" if i % 3 else "no_match",
    )


def latency(name: str, timings_us: list[float]) -> None:
    s = spread(timings_us)
    print(
        f"  {name:<44} n={s.n:>6}  mean={s.mean:8.1f} µs  p50={s.p50:8.1f} µs  p99={s.p99:8.1f} µs"
    )


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def rate(name: str, count: int, started: tuple[float, float]) -> None:
    """Wall-clock rate, and the rate per CPU second of this process: on a shared
    machine the second is the steadier figure (SQLite work runs in-process; a
    PostgreSQL server's own CPU is not counted)."""
    wall = time.perf_counter() - started[0]
    cpu = time.process_time() - started[1]
    print(
        f"  {name:<44} {count:>9} in {wall:7.2f} s = {count / wall:>10,.0f} /s"
        f"   ({count / max(cpu, 1e-9):>10,.0f} per CPU second)"
    )


def bench_append(db: Database, count: int) -> None:
    print(f"1. append ({db.engine.dialect.name})")
    started = clock()
    for i in range(count):
        with db.session() as session:
            append(session, event(i))
    rate("one entry per transaction", count, started)
    started = clock()
    for chunk in range(0, count, 1000):
        with db.session() as session:
            for i in range(chunk, min(count, chunk + 1000)):
                append(session, event(i))
    rate("1000 entries per transaction", count, started)
    started = clock()
    for chunk in range(0, count, 1000):
        with db.session() as session:
            append_many(session, [event(i) for i in range(chunk, min(count, chunk + 1000))])
    rate("append_many, 1000 per transaction", count, started)
    started = clock()
    head = sequence_pending(db)
    rate("sequenced (hashed, indexed, tree stored)", 3 * count, started)
    assert head.tree_size == 3 * count


def bench_requests(scratch: Path, count: int) -> None:
    from fastapi.testclient import TestClient

    from idp.app import create_app
    from idp.cli.setup import initialise
    from idp.settings import Settings
    from verifiers.registry.synthetic import export, seed

    print("2. verification requests through the app (SQLite, one process, one thread)")
    data = scratch / "app"
    data.mkdir()
    registry = data / "registry.db"
    seed(registry, persons=2000, entities=10, seed=1)
    settings = Settings(data_dir=data, registry_path=registry, issuer="http://127.0.0.1:8000")
    report = initialise(settings)
    secret = next(c for c in report["demo_clients"] if c["client_id"] == "demo-bank")
    persons = [p for p in export(registry, "persons", 2000) if p["alive"]]
    app = create_app(settings)
    with TestClient(app, base_url=settings.issuer) as client:
        token = client.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=("demo-bank", secret["client_secret"]),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = clock()
        statuses: dict[int, int] = {}
        for i in range(count):
            person = persons[i % len(persons)]
            response = client.post(
                "/v1/persons/verify",
                json={"national_code": person["national_code"], "birth_date": person["birth_date"]},
                headers=headers,
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        rate("verification requests (each one entry)", count, started)
        print(f"  statuses: {statuses}")
    app.state.hoviyat.close()


def fill_entries(db: Database, count: int) -> None:
    """Real entries, inserted in bulk (the append path is measured in part 1)."""
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    for chunk in range(0, count, 20_000):
        rows = []
        for i in range(chunk, min(count, chunk + 20_000)):
            e = event(i)
            rows.append(
                {
                    "created_at": now,
                    "tracking_code": e.tracking_code,
                    "event_type": e.event_type,
                    "actor_type": e.actor_type,
                    "actor_id": e.actor_id,
                    "service_code": e.service_code,
                    "legal_basis": e.legal_basis,
                    "operation": e.operation,
                    "subject_hash": e.subject_hash,
                    "outcome": e.outcome,
                    "detail": {},
                }
            )
        with db.session() as session:
            session.connection().execute(insert(table), rows)


def proof_latencies(db: Database, size: int, samples: int = 2000) -> None:
    with db.session() as session:
        current = read_head(session).tree_size
        root = tree.root_hash(session, size, current)
        timings = []
        indexes = [random.randrange(size) for _ in range(samples)]
        for index in indexes:
            started = time.perf_counter_ns()
            path = tree.inclusion_proof(session, index, size, current)
            timings.append((time.perf_counter_ns() - started) / 1000)
        # the proofs are right, not just fast
        for index in indexes[:50]:
            leaf = tree.leaf_hash_at(session, index)
            assert leaf is not None
            rfc9162.verify_inclusion(
                leaf, index, size, tree.inclusion_proof(session, index, size, current), root
            )
        consistency = []
        for _ in range(samples // 4):
            old = random.randrange(1, size)
            started = time.perf_counter_ns()
            tree.consistency_proof(session, old, size, current)
            consistency.append((time.perf_counter_ns() - started) / 1000)
    latency(f"inclusion proof at {size:,} leaves ({len(path)} hashes)", timings)
    latency(f"consistency proof to {size:,} leaves", consistency)


def bench_log(db: Database, count: int, scratch: Path) -> None:
    print(f"3. a log of {count:,} entries ({db.engine.dialect.name})")
    started = clock()
    fill_entries(db, count)
    rate("entries inserted in bulk", count, started)
    started = clock()
    head = sequence_pending(db)
    rate("sequenced (hashed, indexed, tree stored)", count, started)
    proof_latencies(db, head.tree_size)

    signing = []
    for _ in range(20):
        started = time.perf_counter_ns()
        make_checkpoint(db, KEK, ORIGIN)
        signing.append((time.perf_counter_ns() - started) / 1000)
    latency("checkpoint (sequence + sign + store)", signing)
    with db.session() as session:
        from idp.audit.signing_key import signing_key

        _, private_key = signing_key(session, KEK)
    text = signed_note.Checkpoint(ORIGIN, head.tree_size, head.root_hash, datetime.now(UTC)).text()
    raw = []
    for _ in range(1000):
        started = time.perf_counter_ns()
        signed_note.sign(text, ORIGIN, private_key)
        raw.append((time.perf_counter_ns() - started) / 1000)
    latency("checkpoint note signature alone (ECDSA P-256)", raw)

    export = scratch / "export.jsonl"
    started = clock()
    with export.open("wb") as handle:
        for line in export_lines(
            db,
            key_encryption_key=KEK,
            pepper=PEPPER,
            origin=ORIGIN,
            actor_type="administrator",
            actor_id="bench",
        ):
            handle.write(line)
    seconds = time.perf_counter() - started[0]
    size_mb = export.stat().st_size / 1e6
    print(f"  export written: {size_mb:,.0f} MB in {seconds:.1f} s")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = clock()
    result = subprocess.run(
        [sys.executable, "-c", "from idp.cli.audit import audit_app; audit_app()", "verify",
         str(export), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started[0]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    verdict = json.loads(result.stdout) if result.stdout else {"error": result.stderr}
    print(
        f"  hoviyat audit verify: {seconds:.1f} s wall, {cpu:.1f} s CPU, exit {result.returncode}, "
        f"ok={verdict.get('ok')}, entries={verdict.get('entries')}"
    )


def bench_big(path: Path, size: int) -> None:
    print(f"4. inclusion proofs at {size:,} leaves (stored tree built directly in SQLite)")
    url = f"sqlite:///{path}"
    upgrade(url)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    started = clock()
    stack: list[tuple[int, bytes]] = []
    batch: list[tuple[int, int, bytes]] = []
    sha256, node_hash = hashlib.sha256, rfc9162.node_hash
    for index in range(size):
        value = sha256(index.to_bytes(8, "big")).digest()
        batch.append((0, index, value))
        level = 0
        while stack and stack[-1][0] == level:
            value = node_hash(stack.pop()[1], value)
            level += 1
            batch.append((level, index >> level, value))
        stack.append((level, value))
        if len(batch) >= 200_000:
            connection.executemany("INSERT INTO audit_tree_nodes VALUES (?, ?, ?)", batch)
            batch.clear()
    connection.executemany("INSERT INTO audit_tree_nodes VALUES (?, ?, ?)", batch)
    root = rfc9162.fold_right([h for _, h in stack])
    connection.execute(
        "UPDATE audit_tree_head SET tree_size = ?, root_hash = ? WHERE id = 1", (size, root)
    )
    connection.commit()
    connection.close()
    rate("stored tree built (leaves)", size, started)
    db = Database(url)
    proof_latencies(db, size)
    if size > 1_000_000:
        proof_latencies(db, 1_000_000)
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--database-url", default="", help="PostgreSQL for parts 1 and 3")
    parser.add_argument("--keep", type=Path, default=None, help="leave the files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = args.keep or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)

        def fresh(name: str) -> Database:
            url = args.database_url or f"sqlite:///{scratch / name}"
            upgrade(url)
            return Database(url)

        if args.appends:
            db = fresh("append.db")
            bench_append(db, args.appends)
            db.dispose()
        if args.requests:
            bench_requests(scratch, args.requests)
        if args.entries:
            db = fresh("log.db")
            bench_log(db, args.entries, scratch)
            db.dispose()
        if args.big:
            bench_big(scratch / "big.db", args.big)


if __name__ == "__main__":
    main()
