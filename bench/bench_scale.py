"""Hosts over one PostgreSQL behind nginx (issue 17), and HTTP certificate issuance beside cfssl.

Run: ``.venv/bin/python bench/bench_scale.py [--database-url postgresql+psycopg://…/test]
[--duration 10] [--connections 32] [--hosts 1,2,3] [--issuance-duration 10]
[--concurrency 16] [--skip-cfssl]``

What is measured, on this machine's cores (PostgreSQL on the same ones):

- verification (``POST /v1/persons/verify``, the demo bank, one in five a
  mismatch) driven by ``wrk`` through ``deploy/nginx/hoviyat.conf`` (TLS) in
  front of 1, 2 and 3 ``hoviyat serve --workers 1`` hosts on 127.0.0.2,
  127.0.0.3, … (the harness of ``tests/scale/cluster.py``); per count: answers/s,
  p50/p99, non-2xx, and CPU milliseconds per answer of the Hoviyat hosts alone
  (PostgreSQL's and nginx's CPU are not counted). Same machine, so the point is
  correctness and overhead, not speed-up;
- certificate issuance over HTTP: ``POST /v1/certificates`` (person-
  authentication profile, each request a different living person and a fresh
  P-256 CSR) with ``--concurrency`` connections to one host, database write and
  audit record included, beside ``cfssl serve`` (Debian golang-cfssl, no
  database) signing the same CSRs under the same concurrency; both driven by
  wrk, compared per second of the server's own CPU time (from /proc).

Targets (issue 17): verification ≥ 2,000/s with p99 < 25 ms on PostgreSQL;
HTTP issuance ≥ 2.0× cfssl's certificates per CPU second.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "scale"), str(ROOT / "bench")]

import httpx  # noqa: E402
from common import BODIES_SCRIPT, cpu_seconds, load_average, parse_wrk  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cluster_module = _load("cluster", ROOT / "tests" / "scale" / "cluster.py")
verification_bench = _load("bench_verification", ROOT / "bench" / "bench_verification.py")


def wrk(
    url: str, script: Path, bodies: Path, token: str, path: str, seconds: int, connections: int
) -> dict[str, float]:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
         "-s", str(script),
         url, "--", str(bodies), token, path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return parse_wrk(done.stdout)


def host_pids(made: Any) -> list[int]:
    pids = []
    for host in made.hosts:
        pids.append(host.process.pid)
        found = subprocess.run(
            ["pgrep", "-P", str(host.process.pid)], capture_output=True, text=True
        )
        pids += [int(pid) for pid in found.stdout.split()]
    return pids


def client_token(url: str, client_id: str, secret: str) -> str:
    answer = httpx.post(
        f"{url}/token", data={"grant_type": "client_credentials"},
        auth=(client_id, secret), verify=False, timeout=30,
    )  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def fresh_schema(base: str, tag: str) -> tuple[str, str]:
    name = f"hv_bench_scale_{tag}_{os.getpid()}"
    return name, cluster_module.scratch_schema(base, name)


def verification_round(
    base: str, folder: Path, registry: Path, count: int, args: Any
) -> dict[str, float]:
    schema, url = fresh_schema(base, f"v{count}")
    try:
        with cluster_module.cluster(folder / f"hosts-{count}", url, registry, count) as made:
            bodies = folder / "verify.jsonl"
            if not bodies.exists():
                verification_bench.write_bodies(registry, bodies, 2000, 5000)
            script = folder / "bodies.lua"
            script.write_text(BODIES_SCRIPT)
            token = client_token(made.url, "demo-bank", made.secrets["demo-bank"])
            wrk(made.url, script, bodies, token, "/v1/persons/verify", 3, args.connections)
            pids = host_pids(made)
            before = cpu_seconds(pids)
            figures = wrk(
                made.url,
                script,
                bodies,
                token,
                "/v1/persons/verify",
                args.duration,
                args.connections,
            )
            figures["cpu_ms"] = 1000 * (cpu_seconds(pids) - before) / max(figures["requests"], 1)
            return figures
    finally:
        cluster_module.drop_schema(base, schema)


def csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def living_codes(registry: Path, count: int) -> list[str]:
    from verifiers.registry.synthetic import SyntheticRegistry

    source = SyntheticRegistry(registry)
    try:
        return [p.national_code for p, _ in source.iter_persons(count * 2) if p.alive][:count]
    finally:
        source.close()


def issuance_round(
    base: str, folder: Path, registry: Path, args: Any
) -> tuple[dict[str, float], Path, Path]:
    schema, url = fresh_schema(base, "issue")
    csrs = [csr_pem() for _ in range(2000)]
    codes = living_codes(registry, len(csrs))
    bodies = folder / "issue.jsonl"
    with bodies.open("w") as handle:
        for csr, code in zip(csrs, codes, strict=False):
            body = {
                "csr": csr,
                "profile": "person-authentication",
                "subject": {"national_code": code},
                "reason": "bench",
            }
            handle.write(json.dumps(body) + "\n")
    cfssl_bodies = folder / "cfssl.jsonl"
    cfssl_bodies.write_text("".join(json.dumps({"certificate_request": c}) + "\n" for c in csrs))
    script = folder / "bodies.lua"
    script.write_text(BODIES_SCRIPT)
    try:
        with cluster_module.cluster(folder / "issuer", url, registry, 1) as made:
            host = made.hosts[0]
            token = client_token(made.url, "demo-admin", made.secrets["demo-admin"])
            wrk(host.url, script, bodies, token, "/v1/certificates", 3, args.concurrency)
            pids = host_pids(made)
            before = cpu_seconds(pids)
            figures = wrk(
                host.url,
                script,
                bodies,
                token,
                "/v1/certificates",
                args.issuance_duration,
                args.concurrency,
            )
            figures["cpu_s"] = cpu_seconds(pids) - before
            ca_dir = folder / "issuer" / "data"
            return figures, ca_dir, cfssl_bodies
    finally:
        cluster_module.drop_schema(base, schema)


def cfssl_round(folder: Path, bodies: Path, args: Any) -> dict[str, float] | None:
    if shutil.which("cfssl") is None:
        print("cfssl not installed (apt-get install golang-cfssl): no comparison")
        return None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cfssl bench CA")])
    now = time.time()
    from datetime import UTC, datetime, timedelta

    start = datetime.fromtimestamp(now, UTC)
    ca = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (folder / "ca-key.pem").write_bytes(pem)
    config = {
        "signing": {"default": {"expiry": "8760h", "usages": ["digital signature", "client auth"]}}
    }
    (folder / "config.json").write_text(json.dumps(config))
    port = cluster_module.free_port()
    server = subprocess.Popen(
        ["cfssl", "serve", "-address", "127.0.0.1", "-port", str(port), "-loglevel", "5",
         "-ca", str(folder / "ca.pem"), "-ca-key", str(folder / "ca-key.pem"),
         "-config", str(folder / "config.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/api/v1/cfssl/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        script = folder / "bodies.lua"
        wrk(url, script, bodies, "-", "/api/v1/cfssl/sign", 3, args.concurrency)
        before = cpu_seconds([server.pid])
        figures = wrk(
            url, script, bodies, "-", "/api/v1/cfssl/sign", args.issuance_duration, args.concurrency
        )
        figures["cpu_s"] = cpu_seconds([server.pid]) - before
        return figures
    finally:
        server.terminate()
        server.wait(timeout=10)


def rates(figures: dict[str, float]) -> str:
    per_cpu = figures["requests"] / max(figures["cpu_s"], 1e-9)
    return (
        f"{figures['rps']:7.0f}/s wall  {per_cpu:7.0f}/s per CPU second  "
        f"p99 {figures['p99']:.1f} ms  non-2xx {figures['errors']:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("HOVIYAT_TEST_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--hosts", default="1,2,3")
    parser.add_argument("--issuance-duration", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--skip-cfssl", action="store_true")
    parser.add_argument("--skip-issuance", action="store_true")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            package = "nginx-light" if tool == "nginx" else tool
            raise SystemExit(f"{tool} is not installed (apt-get install {package})")
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("bench_scale needs PostgreSQL (--database-url postgresql+psycopg://…)")
    database = args.database_url.split("@")[-1]
    print(f"bench_scale: {os.cpu_count()} CPUs, load {load_average()}, database {database}")
    with tempfile.TemporaryDirectory(prefix="hoviyat-scale-") as tmp:
        folder = Path(tmp)
        from verifiers.registry.synthetic import seed

        registry = folder / "registry.db"
        seed(registry, persons=5000, entities=10, seed=29)
        for count in [int(n) for n in args.hosts.split(",")]:
            figures = verification_round(args.database_url, folder, registry, count, args)
            print(
                f"verification, {count} host(s) behind nginx: {figures['rps']:8.0f}/s  "
                f"p50 {figures['p50']:6.1f} ms  p99 {figures['p99']:6.1f} ms  "
                f"non-2xx {figures['errors']:.0f}  hosts' CPU {figures['cpu_ms']:.2f} ms/answer"
            )
        if args.skip_issuance:
            return
        issued, _, cfssl_bodies = issuance_round(args.database_url, folder, registry, args)
        ours = issued["requests"] / max(issued["cpu_s"], 1e-9)
        print(f"HTTP issuance, hoviyat (1 host, {args.concurrency} connections): " + rates(issued))
        if args.skip_cfssl:
            return
        theirs = cfssl_round(folder, cfssl_bodies, args)
        if theirs is None:
            return
        per_cpu = theirs["requests"] / max(theirs["cpu_s"], 1e-9)
        print(f"HTTP issuance, cfssl serve ({args.concurrency} connections):   " + rates(theirs))
        ratio = ours / per_cpu
        verdict = "meets" if ratio >= 2 else "misses"
        print(f"ratio hoviyat/cfssl per CPU second: {ratio:.2f} (target >= 2.0: {verdict})")


if __name__ == "__main__":
    main()
