"""CPU per operation of Hoviyat and of PostgreSQL, and the cores a national peak needs (issue 17).

    .venv/bin/python bench/bench_capacity.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test --model
    .venv/bin/python bench/bench_capacity.py --from capacity.json --model   # model only

One ``hoviyat serve --workers 2`` host on loopback (no nginx in the path), over
a scratch schema in the PostgreSQL given, dropped afterwards. Four loads, each
``--duration`` seconds after a short warm-up, driven by wrk:

- ``verify``: ``POST /v1/persons/verify`` (demo bank, one in five a mismatch);
- ``cc``: the client-credentials grant at ``/token``;
- ``login``: a full OIDC login (``bench/login_flow.lua``: /authorize, login page,
  national code + birth date, remembered consent, code exchange with PKCE);
- ``issue``: ``POST /v1/certificates`` (person-authentication profile, a fresh
  P-256 CSR per body, database write and audit record included).

For each: rate, p99, non-2xx (a load with failures is flagged, never hidden),
Hoviyat's CPU ms per operation (supervisor + workers, from /proc) and
PostgreSQL's. PostgreSQL is measured two ways, because other work shares the
server: *attributed* is the backends serving this run's host (found in
``pg_stat_activity`` by an ``application_name`` of our own) plus PostgreSQL's
background processes (WAL writer, checkpointer, …); *all* is every process of
the ``postgres`` user plus the children the postmaster reaped meanwhile, so it
also counts whatever else used the server in that window. The model uses the
attributed figure; the other backends' CPU is printed beside it.

``--model`` then turns the CPU figures into cores for the stated national peak
(``--peak``, per second) at ``--utilisation`` of each core, on cores like this
machine's, and prints the Markdown table that deploy/README.md carries.
``--json`` saves the figures; ``--from`` reads them back instead of measuring.
The rate depends on what else runs on the machine; the CPU per operation much less.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import httpx  # noqa: E402
from bench_oidc import (  # noqa: E402
    CC_BODY,
    basic,
    post_script,
    server_pids,
    start_hoviyat,
    stop,
    wrk_logins,
)
from bench_oidc import wrk as wrk_script  # noqa: E402
from bench_verification import write_bodies  # noqa: E402
from common import (  # noqa: E402
    BODIES_SCRIPT,
    cpu_seconds,
    free_port,
    load_average,
    parse_wrk,
    postgres_schema_url,
    settings_env,
)
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOADS = ("verify", "cc", "login", "issue")
TITLES = {
    "verify": "verification (POST /v1/persons/verify)",
    "cc": "client-credentials grant (/token)",
    "login": "full OIDC login (code + PKCE)",
    "issue": "certificate issuance (POST /v1/certificates)",
}
# The national peak the model sizes for (issue 17), per second.
DEFAULT_PEAK = "verify=5000,cc=2000,login=1000,issue=200"
REDIRECT_URI = "https://rp.bench.example/callback"
SCOPE = "openid profile"


# --- PostgreSQL's CPU ----------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


TICK = os.sysconf("SC_CLK_TCK")


def _own_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _reaped_seconds(fields: list[str]) -> float:
    return (int(fields[13]) + int(fields[14])) / TICK  # cutime, cstime: children waited for


@dataclass(frozen=True)
class PgSample:
    everything: float  # every postgres process, plus what the postmaster reaped
    ours: dict[int, float]  # backends of this run's host, by pid
    background: dict[int, float]  # checkpointer, WAL writer, autovacuum, ...
    others: dict[int, float]  # other clients' backends (other work on the server)


class PostgresMeter:
    """CPU seconds of the PostgreSQL server's processes, split by whom they served."""

    def __init__(self, admin_url: str, application_name: str) -> None:
        self.application_name = application_name
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.connection: Connection = self.engine.connect()

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()

    def sample(self) -> PgSample:
        rows = self.connection.execute(
            text(
                "SELECT pid, backend_type, application_name FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid()"
            )
        ).all()
        ours: dict[int, float] = {}
        background: dict[int, float] = {}
        others: dict[int, float] = {}
        for pid, backend_type, application in rows:
            fields = _stat(int(pid))
            if fields is None:
                continue
            if backend_type != "client backend":
                background[int(pid)] = _own_seconds(fields)
            elif application == self.application_name:
                ours[int(pid)] = _own_seconds(fields)
            else:
                others[int(pid)] = _own_seconds(fields)
        return PgSample(_everything(), ours, background, others)


def _everything() -> float:
    found = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True)
    stats = {int(pid): _stat(int(pid)) for pid in found.stdout.split()}
    live = {pid: fields for pid, fields in stats.items() if fields is not None}
    total = sum(_own_seconds(fields) for fields in live.values())
    for fields in live.values():
        if int(fields[1]) not in live:  # the postmaster: its parent is not a postgres process
            total += _reaped_seconds(fields)
    return total


def _grown(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two samples by the processes alive at the second (new ones from 0)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


# --- one host and its inputs -----------------------------------------------------------------


@dataclass
class Bench:
    base: str
    process: subprocess.Popen[bytes]
    folder: Path
    secrets: dict[str, str]  # client id -> secret
    persons: list[tuple[str, str]]  # national code, birth date (consent remembered)
    registry: Path


def prepare(folder: Path, database_url: str) -> tuple[Any, dict[str, str], list[tuple[str, str]]]:
    """``hoviyat init`` and ``hoviyat ca init`` on a fresh data folder, a relying party
    with remembered consent for the login load; the settings, secrets and persons."""
    from idp.cli.setup import initialise
    from idp.clients import create_client
    from idp.login.consent import remember_consent
    from idp.oidc.claims import consent_claims
    from idp.secrets import load_secrets
    from idp.settings import Settings
    from idp.storage.engine import Database
    from policies.service_policy import load_service_policies
    from verifiers.registry.synthetic import SyntheticRegistry, seed

    registry_path = folder / "registry.db"
    seed(registry_path, persons=5000, entities=10, seed=29)
    port = free_port()
    settings = Settings(
        data_dir=folder / "data",
        database_url=database_url,
        registry_path=registry_path,
        issuer=f"http://127.0.0.1:{port}",
    )
    report = initialise(settings)
    demo = {c["client_id"]: c["client_secret"] for c in report["demo_clients"]}
    subprocess.run(
        [sys.executable, "-m", "idp.cli", "ca", "init", "--json"],
        env=settings_env(settings), check=True, capture_output=True,
    )  # fmt: skip
    source = SyntheticRegistry(registry_path)
    try:
        living = [
            (person.national_code, person.birth_date.isoformat())
            for person, _ in source.iter_persons(5000)
            if person.alive
        ]
    finally:
        source.close()
    persons = living[:1000]
    claims = consent_claims(SCOPE.split(), {}, load_service_policies()["demo-tax-portal"])
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            keys = load_secrets(settings.resolved_secrets_file)
            created = create_client(
                session, keys.client_secret_key, name="capacity RP",
                service_code="demo-tax-portal", client_id="bench-rp",
                grant_types=["authorization_code", "refresh_token"],
                redirect_uris=[REDIRECT_URI],
            )  # fmt: skip
            for national_code, _ in persons:
                remember_consent(session, national_code, "bench-rp", claims)
    finally:
        database.dispose()
    demo["bench-rp"] = created.client_secret
    return settings, demo, living


def access_token(base: str, client_id: str, secret: str) -> str:
    answer = httpx.post(
        f"{base}/token", data={"grant_type": "client_credentials"},
        auth=(client_id, secret), timeout=30,
    )  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "capacity bench")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# --- the loads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """One load's result: what wrk saw and the CPU the server side spent on it."""

    load: str
    seconds: float
    operations: float  # successful operations (logins: completed logins)
    failures: float  # non-2xx answers, socket errors or failed logins
    rate: float  # operations per second (wall clock)
    p99_ms: float
    hoviyat_ms: float  # Hoviyat CPU ms per operation (supervisor + workers)
    postgres_ms: float  # attributed PostgreSQL CPU ms per operation
    postgres_all_ms: float  # every postgres process, per operation (includes other work)
    postgres_others_ms: float  # other clients' backends meanwhile, per operation
    nginx_ms: float | None  # None: nginx not in the path
    note: str = ""


def wrk_bodies(
    base: str, folder: Path, bodies: Path, token: str, path: str, seconds: int, connections: int
) -> dict[str, float]:
    script = folder / "bodies.lua"
    script.write_text(BODIES_SCRIPT)
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
         "-s", str(script),
         base, "--", str(bodies), token, path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures = parse_wrk(done.stdout)
    return {
        "count": figures["requests"] - figures["errors"],
        "failures": figures["errors"],
        "p99_ms": figures["p99"],
    }


def load_runner(bench: Bench, name: str, args: Any) -> Callable[[int], dict[str, float]]:
    """A function that runs load ``name`` for the seconds given and returns wrk's figures."""
    base, folder = bench.base, bench.folder
    if name == "verify":
        bodies = folder / "verify.jsonl"
        write_bodies(bench.registry, bodies, 2000, 5000)
        token = access_token(base, "demo-bank", bench.secrets["demo-bank"])
        return lambda seconds: wrk_bodies(
            base, folder, bodies, token, "/v1/persons/verify", seconds, args.connections
        )
    if name == "cc":
        script = post_script("/token", CC_BODY, basic("demo-bank", bench.secrets["demo-bank"]))

        def cc(seconds: int) -> dict[str, float]:
            got = wrk_script(base, script, seconds, args.connections, folder)
            return {
                "count": got["count"] - got["non_2xx"],
                "failures": got["non_2xx"] + got["socket_errors"],
                "p99_ms": got["p99_ms"],
            }

        return cc
    if name == "login":

        def login(seconds: int) -> dict[str, float]:
            got = wrk_logins(
                base, "bench-rp", bench.secrets["bench-rp"], bench.persons[:1000], seconds,
                args.login_connections, folder,
            )  # fmt: skip
            return {"count": got["count"], "failures": got["non_2xx"], "p99_ms": got["p99_ms"]}

        return login
    if name == "issue":
        bodies = folder / "issue.jsonl"
        with bodies.open("w") as handle:
            for code, _ in bench.persons[:2000]:
                body = {"csr": csr_pem(), "profile": "person-authentication",
                        "subject": {"national_code": code}, "reason": "capacity bench"}  # fmt: skip
                handle.write(json.dumps(body) + "\n")
        token = access_token(base, "demo-admin", bench.secrets["demo-admin"])
        return lambda seconds: wrk_bodies(
            base, folder, bodies, token, "/v1/certificates", seconds, args.concurrency
        )
    raise SystemExit(f"unknown load {name!r}: one of {', '.join(LOADS)}")


def measure(bench: Bench, meter: PostgresMeter, name: str, args: Any) -> Figures:
    run = load_runner(bench, name, args)
    # Warm until every worker has done the operation a few times: the first
    # certificate a worker issues unlocks the CA key, seconds of CPU once.
    for _ in range(5):
        if run(args.warmup)["count"] >= 20 * args.warmup:
            break
    pids = server_pids(bench.process)
    hoviyat_before = cpu_seconds(pids)
    pg_before = meter.sample()
    started = time.perf_counter()
    got = run(args.duration)
    elapsed = time.perf_counter() - started
    hoviyat = cpu_seconds(pids) - hoviyat_before
    pg_after = meter.sample()
    ours = _grown(pg_before.ours, pg_after.ours)
    background = _grown(pg_before.background, pg_after.background)
    others = _grown(pg_before.others, pg_after.others)
    everything = pg_after.everything - pg_before.everything
    count = max(got["count"], 1.0)
    note = ""
    if got["failures"]:
        note = f"{got['failures']:.0f} failed: figures cover the successful ones only"
    return Figures(
        load=name,
        seconds=float(args.duration),
        operations=got["count"],
        failures=got["failures"],
        rate=got["count"] / args.duration,
        p99_ms=got["p99_ms"],
        hoviyat_ms=1000 * hoviyat / count,
        postgres_ms=1000 * (ours + background) / count,
        postgres_all_ms=1000 * everything / count,
        postgres_others_ms=1000 * others / count,
        nginx_ms=None,
        note=note if note else f"wall {elapsed:.1f} s",
    )


def median_round(done: list[Figures]) -> Figures:
    """The round with the median Hoviyat CPU per operation, the others' figures in its note."""
    chosen = sorted(done, key=lambda figures: figures.hoviyat_ms)[len(done) // 2]
    if len(done) == 1:
        return chosen
    spread = "; ".join(
        f"{f.hoviyat_ms:.2f} + {f.postgres_ms:.2f} ms at {f.rate:.0f}/s" for f in done
    )
    failures = sum(f.failures for f in done)
    note = f"rounds (Hoviyat + PostgreSQL CPU per op): {spread}"
    if failures:
        note += f"; {failures:.0f} failed over all rounds"
    return replace(chosen, note=note, failures=failures)


def show(figures: Figures) -> None:
    nginx = "n/a" if figures.nginx_ms is None else f"{figures.nginx_ms:.2f}"
    flag = f"  ** {figures.note}" if figures.failures else ""
    print(
        f"{TITLES[figures.load]:46s} {figures.rate:8.0f}/s  p99 {figures.p99_ms:7.1f} ms  "
        f"Hoviyat {figures.hoviyat_ms:6.2f}  PostgreSQL {figures.postgres_ms:5.2f} "
        f"(all {figures.postgres_all_ms:5.2f}, others {figures.postgres_others_ms:5.2f})  "
        f"nginx {nginx}  ms CPU/op  non-2xx {figures.failures:.0f}{flag}"
    )


def run_loads(args: Any) -> list[Figures]:
    application = f"hv_capacity_{os.getpid()}"
    schema = f"hv_bench_capacity_{os.getpid()}"
    url = postgres_schema_url(args.database_url, schema)
    url += f"&application_name={application}"
    meter = PostgresMeter(args.database_url, application)
    folder = Path(tempfile.mkdtemp(prefix="hoviyat-capacity-"))
    process: subprocess.Popen[bytes] | None = None
    results: list[Figures] = []
    try:
        settings, demo, persons = prepare(folder, url)
        port = int(settings.issuer.rsplit(":", 1)[1])
        process = start_hoviyat(settings, port, folder)
        bench = Bench(settings.issuer, process, folder, demo, persons, folder / "registry.db")
        rounds: dict[str, list[Figures]] = {name: [] for name in args.loads.split(",")}
        for _ in range(args.rounds):  # interleaved, so a busy spell does not hit one load only
            for name, done in rounds.items():
                figures = measure(bench, meter, name, args)
                show(figures)
                done.append(figures)
        results = [median_round(done) for done in rounds.values()]
    finally:
        stop(process)
        meter.close()
        _drop(args.database_url, schema)
        shutil.rmtree(folder, ignore_errors=True)
    return results


def _drop(admin_url: str, schema: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


# --- the model ----------------------------------------------------------------------------------


def parse_peak(spec: str) -> dict[str, float]:
    peak: dict[str, float] = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        if name not in LOADS:
            raise SystemExit(f"--peak: unknown load {name!r}")
        peak[name] = float(value)
    return peak


def model(results: list[Figures], peak: dict[str, float], utilisation: float, host_cores: int,
          meta: dict[str, str]) -> str:  # fmt: skip
    """The Markdown table of cores needed at the peak, and the totals."""
    by_load = {figures.load: figures for figures in results}
    lines = [
        f"Figures: `{meta['command']}`, {meta['date']}, {meta['machine']}.",
        "",
        "| operation | peak /s | Hoviyat CPU ms/op | PostgreSQL CPU ms/op | "
        f"Hoviyat cores at {utilisation:.0%} | PostgreSQL cores at {utilisation:.0%} | "
        "measured rate /s, p99 ms (one host) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    hoviyat_total = postgres_total = 0.0
    for name, rate in peak.items():
        figures = by_load.get(name)
        if figures is None:
            lines.append(f"| {TITLES[name]} | {rate:,.0f} | not measured | | | | |")
            continue
        hoviyat = rate * figures.hoviyat_ms / 1000 / utilisation
        postgres = rate * figures.postgres_ms / 1000 / utilisation
        hoviyat_total += hoviyat
        postgres_total += postgres
        failed = f"; **{figures.failures:.0f} failed**" if figures.failures else ""
        lines.append(
            f"| {TITLES[name]} | {rate:,.0f} | {figures.hoviyat_ms:.2f} | "
            f"{figures.postgres_ms:.2f} | {hoviyat:.1f} | {postgres:.1f} | "
            f"{figures.rate:,.0f}, {figures.p99_ms:.0f}{failed} |"
        )
    hosts = math.ceil(hoviyat_total / host_cores)
    lines += [
        f"| **all at once** | | | | **{hoviyat_total:.1f}** | **{postgres_total:.1f}** | |",
        "",
        f"Hoviyat: {hoviyat_total:.1f} cores = {hosts} hosts of {host_cores} cores "
        f"(+1 for a host lost or drained: {hosts + 1}). PostgreSQL: one primary of "
        f"{postgres_total:.1f} cores busy at {utilisation:.0%} "
        f"(ratio Hoviyat : PostgreSQL = {hoviyat_total / max(postgres_total, 1e-9):.1f} : 1).",
    ]
    spreads = [f for f in results if f.note.startswith("rounds")]
    if spreads:
        lines += ["", "Each row is the round with the median Hoviyat CPU per op; all rounds:"]
        lines += [f"- {TITLES[f.load]}: {f.note.split(': ', 1)[1]}" for f in spreads]
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} × {cpu}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("HOVIYAT_TEST_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument("--duration", type=int, default=6, help="seconds per measured load")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per load")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (verify, cc)")
    parser.add_argument("--login-connections", type=int, default=16, help="wrk login browsers")
    parser.add_argument("--concurrency", type=int, default=16, help="issuance connections")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds per load; the median round is kept"
    )
    parser.add_argument("--loads", default=",".join(LOADS), help="subset of verify,cc,login,issue")
    parser.add_argument("--model", action="store_true", help="print the capacity model too")
    parser.add_argument("--peak", default=DEFAULT_PEAK, help="national peak, operations/s")
    parser.add_argument("--utilisation", type=float, default=0.6, help="target busy share")
    parser.add_argument("--host-cores", type=int, default=8, help="cores per Hoviyat host")
    parser.add_argument("--json", type=Path, help="save the measured figures here")
    parser.add_argument("--from", dest="source", type=Path, help="figures saved by --json")
    args = parser.parse_args()

    if args.source is not None:
        saved = json.loads(args.source.read_text())
        meta = saved["meta"]
        results = [Figures(**figures) for figures in saved["figures"]]
    else:
        if shutil.which("wrk") is None:
            raise SystemExit("wrk is not installed (apt-get install wrk)")
        if not args.database_url.startswith("postgresql"):
            raise SystemExit("bench_capacity needs PostgreSQL (--database-url postgresql+…)")
        print(
            f"bench_capacity: one hoviyat serve --workers 2, {machine()}, load {load_average()}, "
            f"database {args.database_url.split('@')[-1]}; {args.duration} s per load"
        )
        meta = {
            "command": " ".join([".venv/bin/python bench/bench_capacity.py", *sys.argv[1:]]),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "load_before": load_average(),
        }
        results = run_loads(args)
        meta["load_after"] = load_average()
        print(f"load average after: {meta['load_after']}")
        if args.json is not None:
            payload = {"meta": meta, "figures": [asdict(figures) for figures in results]}
            args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.model:
        print()
        print(model(results, parse_peak(args.peak), args.utilisation, args.host_cores, meta))


if __name__ == "__main__":
    main()
