"""Verification API throughput: POST /v1/persons/verify under wrk, 2 uvicorn workers, loopback.

    .venv/bin/python bench/bench_verification.py [--persons 100000] [--duration 15]
        [--connections 8,16,32,64] [--workers 2] [--profile]

Seeds (once, cached) a synthetic registry, makes a temporary data directory
with ``hoviyat init``, serves it with ``hoviyat serve --workers 2``, gets a
token for the demo bank client, and drives the endpoint with wrk: each
request picks one of a few thousand exported persons, one in five with a
wrong birth date. Prints requests/s and p50/p90/p99 latency per concurrency
level. Runs on SQLite, and also on PostgreSQL when HOVIYAT_BENCH_DATABASE_URL
is set. ``--profile`` records one worker with py-spy during the middle level.
The last column, server CPU time per request (all workers), does not depend on
how busy the machine is: 2 cores give at most 2000 / (that figure + wrk's own
share) requests/s. Target: >= 2,000 requests/s with p99 < 25 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from common import (
    cached_registry,
    cpu_seconds,
    demo_secret,
    hoviyat_env,
    init,
    load_average,
    parse_wrk,
    postgres_schema_url,
    serve,
    token,
    worker_pids,
)

from verifiers.dates import to_jalali
from verifiers.registry.synthetic import SyntheticRegistry

WRK_SCRIPT = """
local bodies = {}
local token = ""
local counter = 0

function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  token = args[2]
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local body = bodies[math.random(#bodies)]
  return wrk.format("POST", "/v1/persons/verify", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end
"""


def write_bodies(registry: Path, path: Path, count: int, persons: int) -> None:
    """Request bodies for ``count`` persons spread over the registry; one in five mismatches."""
    rng = random.Random(11)
    source = SyntheticRegistry(registry)
    try:
        people = [person for person, _ in source.iter_persons(persons)]
    finally:
        source.close()
    with open(path, "w", encoding="utf-8") as handle:
        for person in rng.sample(people, min(count, len(people))):
            birth = person.birth_date
            if rng.random() < 0.2:
                birth += timedelta(days=rng.randint(1, 300))
            body = {
                "national_code": person.national_code,
                "birth_date": to_jalali(birth) if rng.random() < 0.5 else birth.isoformat(),
                "first_name": person.first_name,
                "last_name": person.last_name,
            }
            handle.write(json.dumps(body, ensure_ascii=False) + "\n")


def run_wrk(
    url: str,
    script: Path,
    bodies: Path,
    access_token: str,
    connections: int,
    duration: int,
    threads: int,
) -> dict[str, float]:
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            str(bodies),
            access_token,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_wrk(result.stdout)


def profile_worker(server_pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on one uvicorn worker of the server for ``seconds`` (raw folded stacks)."""
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy not installed (.venv/bin/pip install py-spy); no profile")
        return None
    workers = worker_pids(server_pid)
    target = workers[-1] if workers else server_pid
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(target),
            "--duration",
            str(seconds),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bench(label: str, database_url: str, args: argparse.Namespace) -> None:
    registry = cached_registry(args.persons)
    with tempfile.TemporaryDirectory(prefix="hoviyat-bench-") as scratch:
        folder = Path(scratch)
        env = hoviyat_env(folder / "data", registry, database_url)
        report = init(env)
        bodies = folder / "bodies.jsonl"
        write_bodies(registry, bodies, args.bodies, args.persons)
        script = folder / "verify.lua"
        script.write_text(WRK_SCRIPT)
        with serve(env, workers=args.workers) as served:
            url = served.url
            access_token = token(url, "demo-bank", demo_secret(report, "demo-bank"))
            probe = httpx.post(
                f"{url}/v1/persons/verify",
                content=bodies.read_text(encoding="utf-8").splitlines()[0].encode(),
                headers={
                    "Authorization": f"Bearer {access_token}",
                    "Content-Type": "application/json",
                },
            )
            assert probe.status_code == 200, probe.text
            run_wrk(url, script, bodies, access_token, 16, 3, args.threads)  # warm-up
            print(
                f"\n[{label}] POST /v1/persons/verify, {args.workers} workers, "
                f"{args.persons:,} persons, load average {load_average()}"
            )
            print(
                f"{'connections':>11} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} "
                f"{'p99 ms':>8} {'errors':>7} {'server CPU ms/req':>18}"
            )
            levels = [int(c) for c in args.connections.split(",")]
            for index, connections in enumerate(levels):
                spy = None
                if args.profile and index == len(levels) // 2:
                    spy = profile_worker(
                        served.pid, args.duration - 2, Path(f"profile-{label}.txt")
                    )
                processes = [served.pid, *worker_pids(served.pid)]
                cpu_before = cpu_seconds(processes)
                figures = run_wrk(
                    url, script, bodies, access_token, connections, args.duration, args.threads
                )
                cpu_ms = 1000 * (cpu_seconds(processes) - cpu_before) / figures["requests"]
                if spy is not None:
                    spy.wait()
                    print(f"  (py-spy profile of one worker: profile-{label}.txt)")
                print(
                    f"{connections:>11} {figures['rps']:>9,.0f} {figures['p50']:>8.2f} "
                    f"{figures['p90']:>8.2f} {figures['p99']:>8.2f} {figures['errors']:>7,.0f} "
                    f"{cpu_ms:>18.2f}"
                )
                time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--bodies", type=int, default=5_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", default="8,16,32,64")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    bench("sqlite", "", args)
    pg = os.environ.get("HOVIYAT_BENCH_DATABASE_URL")
    if pg:
        bench("postgresql", postgres_schema_url(pg, "hoviyat_bench"), args)


if __name__ == "__main__":
    main()
