"""Shared bench helpers: a cached synthetic registry, a temporary Hoviyat served by
``hoviyat serve --workers N`` in a subprocess, tokens, and wrk output parsing.

Benchmarks run the product as a user would (the console script, real uvicorn
workers on loopback), never an in-process shortcut.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parents[1]
HOVIYAT = str(Path(sys.executable).with_name("hoviyat"))
CACHE = Path(os.environ.get("HOVIYAT_BENCH_CACHE", Path.home() / ".cache" / "hoviyat-bench"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cached_registry(persons: int, entities: int = 1_000, seed: int = 1) -> Path:
    """A synthetic registry seeded once into the cache directory and reused by later runs."""
    from verifiers.registry.synthetic import seed as seed_registry

    path = CACHE / f"registry-{persons}-{entities}-{seed}.db"
    if not path.exists():
        started = time.perf_counter()
        seed_registry(path, persons=persons, entities=entities, seed=seed)
        elapsed = time.perf_counter() - started
        print(
            f"registry seeded: {persons:,} persons in {elapsed:.1f} s "
            f"({persons / elapsed:,.0f} persons/s) -> {path}"
        )
    return path


def postgres_schema_url(url: str, schema: str) -> str:
    """``url`` with a fresh, empty schema of its own on the search path."""
    from sqlalchemy import create_engine, text

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def hoviyat_env(
    data_dir: Path, registry: Path, database_url: str = "", **extra: str
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOVIYAT_")}
    env.update(
        HOVIYAT_DATA_DIR=str(data_dir),
        HOVIYAT_REGISTRY_PATH=str(registry),
        HOVIYAT_DATABASE_URL=database_url,
        HOVIYAT_LOG_LEVEL="WARNING",
        HOVIYAT_ACCESS_TOKEN_TTL_SECONDS="3600",
        **extra,
    )
    return env


def init(env: dict[str, str]) -> dict[str, Any]:
    """``hoviyat init --json`` for the temporary data directory; returns its report."""
    result = subprocess.run(
        [HOVIYAT, "init", "--json"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"hoviyat init failed: {result.stderr.strip()}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def demo_secret(report: dict[str, Any], client_id: str) -> str:
    return next(c["client_secret"] for c in report["demo_clients"] if c["client_id"] == client_id)


@dataclass(frozen=True)
class Served:
    url: str
    pid: int  # the ``hoviyat serve`` process; its children are the uvicorn workers


@contextmanager
def serve(env: dict[str, str], workers: int = 2) -> Iterator[Served]:
    """``hoviyat serve --workers N`` on a free loopback port, ready (/readyz); stopped after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**env, "HOVIYAT_ISSUER": url}
    process = subprocess.Popen(
        [HOVIYAT, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"hoviyat serve exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("hoviyat serve did not become ready in 60 s")
            time.sleep(0.2)
        wait_until_idle(process.pid)
        yield Served(url, process.pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by ``pids`` (from /proc, in seconds)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def wait_until_idle(server_pid: int, timeout: float = 120) -> None:
    """Until every worker has finished importing (readiness needs only one of them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [server_pid, *worker_pids(server_pid)]
        before = cpu_seconds(pids)
        time.sleep(1)
        if cpu_seconds(pids) - before < 0.1:
            return


def worker_pids(server_pid: int) -> list[int]:
    """The uvicorn worker processes under a ``hoviyat serve`` (for py-spy), without
    multiprocessing's resource tracker, also a child of the supervisor."""
    result = subprocess.run(["pgrep", "-P", str(server_pid)], capture_output=True, text=True)
    workers = []
    for pid in result.stdout.split():
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(int(pid))
        except OSError:
            continue  # exited meanwhile
    return workers


def token(url: str, client_id: str, secret: str) -> str:
    answer = httpx.post(
        f"{url}/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


# wrk script: POST a random line of the file given as its first argument to the path
# given as its third, with "Authorization: Bearer <second argument>" unless that is "-".
BODIES_SCRIPT = """
local bodies = {}
local token = ""
local path = ""

function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  token = args[2]
  path = args[3]
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local headers = { ["Content-Type"] = "application/json" }
  if token ~= "-" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", path, headers, bodies[math.random(#bodies)])
end
"""


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50/p90/p99 latency (ms) and non-2xx answers from ``wrk --latency``."""
    figures: dict[str, float] = {
        "rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "errors": 0.0,
    }
    for percentile in ("50", "90", "99"):
        found = re.search(rf"^\s+{percentile}%\s+(\S+)", output, re.MULTILINE)
        figures[f"p{percentile}"] = _ms(found.group(1)) if found else float("nan")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), "
        r"timeout (\d+)",
        output,
    )
    if non_2xx:
        figures["errors"] += int(non_2xx.group(1))
    if socket_errors:
        figures["errors"] += sum(int(n) for n in socket_errors.groups())
    return figures


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def settings_env(settings: Any, **extra: str) -> dict[str, str]:
    """The environment for a Hoviyat process on ``settings``' data directory and database."""
    return {
        **os.environ,
        "HOVIYAT_DATA_DIR": str(settings.data_dir),
        "HOVIYAT_DATABASE_URL": settings.resolved_database_url,
        "HOVIYAT_REGISTRY_PATH": str(settings.resolved_registry_path),
        "HOVIYAT_ISSUER": settings.issuer,
        "HOVIYAT_LOG_LEVEL": "WARNING",
        **extra,
    }


def resident_mb(pid: int) -> float:
    """A process's resident set size in MB (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


@dataclass(frozen=True)
class Spread:
    """Timings summarised: how many, mean, median, 99th percentile and the largest."""

    n: int
    mean: float
    p50: float
    p99: float
    max: float


def spread(timings: list[float]) -> Spread:
    ordered = sorted(timings)
    return Spread(
        n=len(ordered),
        mean=statistics.fmean(ordered),
        p50=ordered[len(ordered) // 2],
        p99=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        max=ordered[-1],
    )
