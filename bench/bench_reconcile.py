"""Batch reconciliation: `hoviyat reconcile` on a 1,000,000-row legacy CSV, rows/s and peak memory.

    .venv/bin/python bench/bench_reconcile.py [--rows 1000000] [--registry-persons 1000000]
        [--sample-persons 200000]

Seeds (once, cached) a synthetic registry of a million persons, writes (once,
cached) a legacy file from it with the defects of :mod:`idp.reconciliation.sample`
(dropped leading zeros, missing fields, wrong birth dates and names, bad
checksums, malformed dates, unknown persons, short rows; persons repeat after
``--sample-persons`` rows), makes a temporary data directory with
``hoviyat init`` and runs ``hoviyat reconcile`` on it as a child process.
Prints rows/s, wall time and the child's peak resident memory (ru_maxrss).
Runs on SQLite, and also on PostgreSQL when HOVIYAT_BENCH_DATABASE_URL is set.
Target: 1,000,000 rows in under 5 minutes, under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from common import (
    CACHE,
    HOVIYAT,
    cached_registry,
    hoviyat_env,
    init,
    postgres_schema_url,
    resident_mb,
)

from idp.reconciliation.sample import write_sample


def legacy_file(registry: Path, rows: int, sample_persons: int) -> Path:
    path = CACHE / f"legacy-{rows}-{sample_persons}.csv"
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".part")
        defects = write_sample(registry, partial, rows, persons=sample_persons)
        partial.replace(path)
        print(
            f"legacy file: {rows:,} rows, {path.stat().st_size / 1e6:.0f} MB in "
            f"{time.perf_counter() - started:.0f} s; defects {json.dumps(defects)}"
        )
    return path


def run(label: str, database_url: str, source: Path, registry: Path, rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hoviyat-bench-") as scratch:
        folder = Path(scratch)
        env = hoviyat_env(folder / "data", registry, database_url)
        init(env)
        out = folder / "reconciled.csv"
        started = time.perf_counter()
        log = folder / "stderr.txt"
        with open(log, "wb") as errors, open(folder / "summary.json", "wb") as summary_file:
            child = subprocess.Popen(
                [HOVIYAT, "reconcile", str(source), "--out", str(out), "--json", "--no-resume"],
                env=env,
                stdout=summary_file,
                stderr=errors,
            )
            samples = []  # (seconds, resident MB) every half second: is memory flat?
            while True:
                # wait4: this child's own rusage, not the maximum over every child so far.
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                samples.append((time.perf_counter() - started, resident_mb(child.pid)))
                time.sleep(0.5)
        child.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        if child.returncode != 0:
            raise SystemExit(f"hoviyat reconcile failed: {log.read_text()[-500:]}")
        summary = json.loads((folder / "summary.json").read_text())
        print(f"\n[{label}] hoviyat reconcile, {rows:,} legacy rows")
        print(f"  rows reconciled    {summary['rows']:>12,}")
        print(f"  needing review     {summary['needs_review']:>12,}")
        print(f"  wall time          {elapsed:>12.1f} s")
        print(f"  rate               {summary['rows'] / elapsed:>12,.0f} rows/s")
        print(f"  peak memory (RSS)  {usage.ru_maxrss / 1024:>12.0f} MB")
        print(f"  CPU (user+sys)     {usage.ru_utime + usage.ru_stime:>12.1f} s")
        tenths = [samples[len(samples) * k // 10][1] for k in range(1, 10)] if samples else []
        print("  RSS at 10%..90% of the run (MB): " + " ".join(f"{mb:.0f}" for mb in tenths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--registry-persons", type=int, default=1_000_000)
    parser.add_argument("--sample-persons", type=int, default=200_000)
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL run only")
    args = parser.parse_args()
    registry = cached_registry(args.registry_persons)
    source = legacy_file(registry, args.rows, args.sample_persons)
    if not args.skip_sqlite:
        run("sqlite", "", source, registry, args.rows)
    pg = os.environ.get("HOVIYAT_BENCH_DATABASE_URL")
    if pg:
        run("postgresql", postgres_schema_url(pg, "hoviyat_bench"), source, registry, args.rows)


if __name__ == "__main__":
    main()
