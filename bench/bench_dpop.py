"""DPoP (RFC 9449) over HTTP: what a proof costs Hoviyat, and node oidc-provider beside it.

    .venv/bin/python bench/bench_dpop.py                      # SQLite, 8 s per load, 3 rounds
    .venv/bin/python bench/bench_dpop.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/bench_dpop.py --duration 5 --rounds 1 --skip-peer

``hoviyat serve --workers 2`` and node ``oidc-provider`` (bench/.peers/, set up as
bench_oidc.py's peer: ES256 JWT access tokens, RFC 9068, one process) with
``features.dPoP`` on, driven by ``wrk -t2`` over loopback. Loads, each round in
this order, the medians of ``--rounds`` alternating rounds reported:

(a) plain client-credentials grants/s, Hoviyat and the peer, sent by the same
    Lua script as (b) with the proof in a header neither server reads: wrk's
    work and the bytes on the wire are (b)'s, so (a) and (b) differ only in what
    the server does with a proof (wrk shares the 2 cores with the servers);
(b) DPoP-bound client-credentials grants/s at Hoviyat: every request carries a
    fresh proof (its own ``jti``, ``iat`` a few seconds old, ``htm``/``htu`` of
    /token), so every one is verified and its ``jti`` spent;
(d) the same load as (b) against the peer;
(c) ``POST /v1/persons/verify`` with a DPoP-bound access token, a fresh proof
    (with ``ath``) per request; and with a bearer token for reference.

wrk cannot sign, so the proofs are made in Python (one P-256 key, as a client
holds one) just before each load and a Lua script deals them out, each wrk
thread its own stride, once each; both servers get the same number of proofs
of the same shape from the same key, only ``htu`` names their own URL. Server
nonces (§8) are off on both (each library's default); if a server asks for one
anyway (``use_dpop_nonce`` with a DPoP-Nonce header), the proofs carry it, as a
real client's retry would. A load that ran out of proofs, or got any non-2xx
answer, is marked invalid.

Prints rates, p99, server CPU ms per operation (all worker processes, from
/proc: the figure a shared machine's other work does not distort), the ratio
Hoviyat/peer for DPoP grants (target >= 1.0) and DPoP's cost, 1 - DPoP grant
rate / plain grant rate (target <= 35 %).

Figures, 2 cores, quiet machine (load average 2-3), ``--duration 8 --rounds 3``,
2026-12-06 03:45 UTC, after the SQLite spend by row count (e4038fc) and the 10 s
prune (2e55ec9); medians:

                                  SQLite                  PostgreSQL
                                  rate/s  p99 ms  CPU ms  rate/s  p99 ms  CPU ms
  (a) client credentials           6031     12   0.28     5102     12   0.27
  (b) DPoP-bound grants            4187     20   0.41     3529     17   0.42
  (a) oidc-provider grants         4486     22   0.28     4637     22   0.27
  (d) oidc-provider DPoP grants    2162     32   0.63     2153     31   0.63
  ratio (b)/(d), target >= 1.0     1.94 (met)             1.64 (met)
  DPoP cost 1-(b)/(a), <= 35 %     30.6 % (met)           30.8 % (met)
  oidc-provider's own DPoP cost    51.8 %                 53.6 %

A first SQLite run minutes earlier, while other work was finishing, gave 35.5 %.
Earlier the same day, before those two changes: SQLite 37.8-50.7 % (a DPoP grant
0.47 CPU ms), PostgreSQL 32.0 %. Where a proof's cost went: its ES256 check
(OpenSSL, ~65 us) and its jti row; on SQLite the row's random key dirtied an
index page per insert and again per delete, and a prune every second per worker
rewrote most of the index each time.

Before this bench's optimisations (SQLite, load 2.3, one 5 s round) a DPoP grant ran
whole in the worker's writer thread and cost 1.65 CPU ms: 487 grants/s, ratio 0.23,
DPoP cost 85 %. An ES256 proof's verification alone (OpenSSL, ~70-90 us here) is a
third of a plain grant's CPU, so a DPoP cost under 35 % leaves little for the rest;
oidc-provider pays 60-66 % for the same proofs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench_oidc import (  # noqa: E402
    CC_BODY,
    PEER_AUTH,
    basic,
    free_port,
    post_script,
    scratch_schema,
    server_pids,
    start_hoviyat,
    start_peer,
    stop,
    wrk,
)
from bench_verification import write_bodies  # noqa: E402
from common import cpu_seconds  # noqa: E402

PERSONS = 3000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Prover:
    """A DPoP client's key pair and its proofs (RFC 9449 §4.2), ES256."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        numbers = self._key.public_key().public_numbers()
        jwk = {
            "kty": "EC", "crv": "P-256",
            "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big")),
        }  # fmt: skip
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
        self._header = b64(json.dumps(header, separators=(",", ":")).encode())
        self.nonce: dict[str, str] = {}  # htu -> the server's DPoP-Nonce, if it asked for one

    def proof(self, htm: str, htu: str, access_token: str | None = None) -> str:
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu, "iat": int(time.time()),
        }  # fmt: skip
        if access_token is not None:
            claims["ath"] = b64(hashlib.sha256(access_token.encode("ascii")).digest())
        if htu in self.nonce:
            claims["nonce"] = self.nonce[htu]
        signing = f"{self._header}.{b64(json.dumps(claims, separators=(',', ':')).encode())}"
        der = self._key.sign(signing.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def proofs_file(
        self, path: Path, count: int, htm: str, htu: str, access_token: str | None = None
    ) -> Path:
        path.write_text("\n".join(self.proof(htm, htu, access_token) for _ in range(count)) + "\n")
        return path


def learn_nonce(prover: Prover, post: Callable[[str], httpx.Response], htu: str) -> None:
    """One request as a real client makes it: if the server answers use_dpop_nonce (§8),
    later proofs carry the nonce it named."""
    answer = post(prover.proof("POST", htu))
    nonce = answer.headers.get("dpop-nonce")
    if answer.status_code in (400, 401) and nonce:
        prover.nonce[htu] = nonce
        answer = post(prover.proof("POST", htu))
    if answer.status_code != 200:
        raise SystemExit(f"DPoP probe at {htu} failed: {answer.status_code} {answer.text}")


# Each wrk thread deals its own stride of the proofs, each proof once; past the
# end it sends a placeholder the server refuses, so exhaustion shows as non-2xx.
_DEAL = """
local proofs = {{}}
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args)
  for line in io.lines("{proofs}") do proofs[#proofs + 1] = line end
  position = tid + 1
  {init}
end
function request()
  local proof = proofs[position] or "exhausted"
  position = position + {threads}
  {request}
end
"""


def grant_script(proofs: Path, authorization: str, threads: int, header: str = "DPoP") -> str:
    """Grants, each with the next proof in ``header``: DPoP, or for the plain load a
    header the servers ignore, so both loads cost wrk the same and put the same
    bytes on the wire, and the difference is what the server does with a proof."""
    return _DEAL.format(
        proofs=proofs, threads=threads, init="",
        request=f"""return wrk.format("POST", "/token", {{
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "{authorization}", ["{header}"] = proof}}, "{CC_BODY}")""",
    )  # fmt: skip


def verify_script(proofs: Path | None, bodies: Path, access_token: str, threads: int) -> str:
    scheme = "Bearer" if proofs is None else "DPoP"
    headers = f"""["Content-Type"] = "application/json",
    ["Authorization"] = "{scheme} {access_token}\""""
    if proofs is not None:
        headers += ', ["DPoP"] = proof'
    return _DEAL.format(
        proofs=proofs or bodies, threads=threads,
        init=f"""bodies = {{}}
  for line in io.lines("{bodies}") do bodies[#bodies + 1] = line end
  math.randomseed(tid + 7)""",
        request=f"""return wrk.format("POST", "/v1/persons/verify", {{
    {headers}}}, bodies[math.random(#bodies)])""",
    )  # fmt: skip


# --- set-up ------------------------------------------------------------------------------


def prepare(workdir: Path, database_url: str | None, port: int) -> dict[str, Any]:
    from idp.cli.setup import initialise
    from idp.settings import Settings
    from verifiers.registry.synthetic import seed

    registry_path = workdir / "registry.db"
    seed(registry_path, persons=PERSONS, entities=10, seed=11)
    settings = Settings(
        data_dir=workdir / "data",
        database_url=database_url or f"sqlite:///{workdir / 'hoviyat.db'}",
        registry_path=registry_path,
        issuer=f"http://127.0.0.1:{port}",
    )
    report = initialise(settings)
    demo = {c["client_id"]: c["client_secret"] for c in report["demo_clients"]}
    bodies = workdir / "bodies.jsonl"
    write_bodies(registry_path, bodies, 2000, PERSONS)
    return {"settings": settings, "cc": ("demo-bank", demo["demo-bank"]), "bodies": bodies}


# --- measuring ---------------------------------------------------------------------------


class Load:
    """One named load: its rounds' figures and the server CPU ms per request of each."""

    def __init__(self, name: str, pids: list[int]) -> None:
        self.name = name
        self.pids = pids
        self.runs: list[dict[str, float]] = []

    def run(self, go: Callable[[], dict[str, float]], proofs: int | None = None) -> None:
        before = cpu_seconds(self.pids)
        figures = go()
        figures["cpu_ms"] = (cpu_seconds(self.pids) - before) / max(figures["count"], 1) * 1000
        if proofs is not None and figures["count"] > proofs:
            figures["non_2xx"] = max(figures["non_2xx"], figures["count"] - proofs)
        self.runs.append(figures)

    def median(self) -> dict[str, float]:
        ordered = sorted(self.runs, key=lambda run: run["rate"])
        middle = dict(ordered[len(ordered) // 2])
        middle["cpu_ms"] = statistics.median(run["cpu_ms"] for run in self.runs)
        middle["invalid"] = float(any(run["non_2xx"] or run["socket_errors"] for run in self.runs))
        return middle

    def show(self) -> None:
        figures = self.median()
        rounds = ", ".join(f"{run['rate']:.0f}" for run in self.runs)
        flag = "  INVALID: non-2xx answers" if figures["invalid"] else ""
        print(f"{self.name:40s} {figures['rate']:8.1f}/s  p99 {figures['p99_ms']:7.1f} ms  "
              f"CPU {figures['cpu_ms']:5.2f} ms/op  rounds {rounds}{flag}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per load")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL server URL (a scratch schema is made)"
    )
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="bench-dpop-"))
    port = free_port()
    server = peer = None
    schema = database_url = None
    if args.database_url:
        database_url, schema = scratch_schema(args.database_url)
    try:
        setup = prepare(workdir, database_url, port)
        settings = setup["settings"]
        base = settings.issuer
        server = start_hoviyat(settings, port, workdir)
        peer_port = free_port()
        peer = None if args.skip_peer else start_peer(peer_port, "jwt", dpop=True)
        peer_url = f"http://127.0.0.1:{peer_port}"
        backend = "PostgreSQL" if database_url else "SQLite"
        print(f"Hoviyat: hoviyat serve --workers 2, {backend}; wrk -t2 -c{args.connections}, "
              f"{args.duration} s per load, {args.rounds} alternating rounds")  # fmt: skip
        print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
              f"on {os.cpu_count()} cores")  # fmt: skip
        measure(args, base, setup, server, peer, peer_url, workdir)
    finally:
        stop(server)
        stop(peer)
        print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        if schema is not None:
            from bench_oidc import drop_schema

            drop_schema(args.database_url, schema)
        shutil.rmtree(workdir, ignore_errors=True)


def measure(
    args: Any, base: str, setup: dict[str, Any], server: subprocess.Popen[bytes],
    peer: subprocess.Popen[bytes] | None, peer_url: str, workdir: Path,
) -> None:  # fmt: skip
    cc_auth = basic(*setup["cc"])
    client_id, secret = setup["cc"]
    prover = Prover()
    token_url, peer_token_url = f"{base}/token", f"{peer_url}/token"
    verify_url = f"{base}/v1/persons/verify"

    def token_post(url: str, auth: tuple[str, str]) -> Callable[[str], httpx.Response]:
        return lambda proof: httpx.post(
            url, data={"grant_type": "client_credentials"}, auth=auth,
            headers={"DPoP": proof}, timeout=10,
        )  # fmt: skip

    learn_nonce(prover, token_post(token_url, (client_id, secret)), token_url)
    bound = token_post(token_url, (client_id, secret))(prover.proof("POST", token_url)).json()
    assert bound["token_type"] == "DPoP", bound
    dpop_token = bound["access_token"]
    bearer_token = httpx.post(
        token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=10
    ).json()["access_token"]
    first_body = setup["bodies"].read_text(encoding="utf-8").splitlines()[0].encode()
    probe = httpx.post(
        verify_url, content=first_body, timeout=10,
        headers={"Authorization": f"DPoP {dpop_token}", "Content-Type": "application/json",
                 "DPoP": prover.proof("POST", verify_url, dpop_token)},
    )  # fmt: skip
    assert probe.status_code == 200, probe.text
    if peer is not None:
        learn_nonce(prover, token_post(peer_token_url, ("bench", PEER_SECRET)), peer_token_url)

    pids = server_pids(server)
    peer_pids = [peer.pid] if peer is not None else []
    threads = 2
    loads = {
        "plain": Load("(a) client-credentials grants", pids),
        "dpop": Load("(b) DPoP-bound grants", pids),
        "peer_plain": Load("(a) oidc-provider grants", peer_pids),
        "peer_dpop": Load("(d) oidc-provider DPoP-bound grants", peer_pids),
        "verify_dpop": Load("(c) DPoP verifications", pids),
        "verify_bearer": Load("    bearer verifications", pids),
    }
    expected = 6000.0  # proofs per second to make, until a round has shown the real rate

    def how_many(*names: str) -> int:
        seen = [run["rate"] for name in names for run in loads[name].runs]
        rate = max(seen, default=expected)
        return int(rate * 1.6 * args.duration) + 2000

    def dpop_grants(name: str, url: str, authorization: str, header: str = "DPoP") -> None:
        count = how_many(name)
        proofs = prover.proofs_file(workdir / f"{name}.txt", count, "POST", f"{url}/token")
        script = grant_script(proofs, authorization, threads, header)
        loads[name].run(lambda: wrk(url, script, args.duration, args.connections, workdir), count)

    def verifications(name: str, access_token: str, dpop: bool) -> None:
        count = how_many(name)
        proofs = (
            prover.proofs_file(workdir / f"{name}.txt", count, "POST", verify_url, access_token)
            if dpop
            else None
        )
        script = verify_script(proofs, setup["bodies"], access_token, threads)
        loads[name].run(
            lambda: wrk(base, script, args.duration, args.connections, workdir),
            count if dpop else None,
        )

    plain = post_script("/token", CC_BODY, cc_auth)
    peer_plain = post_script("/token", CC_BODY, PEER_AUTH)
    # Warm-up: both servers' code paths, a few seconds each, not counted.
    wrk(base, plain, 2, args.connections, workdir)
    if peer is not None:
        wrk(peer_url, peer_plain, 2, args.connections, workdir)
    for _ in range(args.rounds):
        # (a) as (b) for wrk: the same script and bytes, the proof in an ignored header.
        dpop_grants("plain", base, cc_auth, UNUSED_HEADER)
        dpop_grants("dpop", base, cc_auth)
        if peer is not None:
            dpop_grants("peer_plain", peer_url, PEER_AUTH, UNUSED_HEADER)
            dpop_grants("peer_dpop", peer_url, PEER_AUTH)
        verifications("verify_dpop", dpop_token, dpop=True)
        verifications("verify_bearer", bearer_token, dpop=False)
    report(loads, peer is not None)


def report(loads: dict[str, Load], with_peer: bool) -> None:
    print()
    for name in ("plain", "dpop", "verify_dpop", "verify_bearer"):
        loads[name].show()
    if with_peer:
        loads["peer_plain"].show()
        loads["peer_dpop"].show()
    plain, dpop = loads["plain"].median(), loads["dpop"].median()
    cost = 1 - dpop["rate"] / plain["rate"]
    print(f"\nDPoP cost at /token, 1 - (b)/(a):            {cost:6.1%}   target <= 35 %"
          f"   ({'met' if cost <= 0.35 else 'MISSED'})")  # fmt: skip
    vd, vb = loads["verify_dpop"].median(), loads["verify_bearer"].median()
    print(f"DPoP cost at /v1/persons/verify, 1 - DPoP/bearer: {1 - vd['rate'] / vb['rate']:6.1%}"
          "   (reference)")  # fmt: skip
    if with_peer:
        peer = loads["peer_dpop"].median()
        ratio = dpop["rate"] / peer["rate"]
        peer_cost = 1 - peer["rate"] / loads["peer_plain"].median()["rate"]
        print(f"ratio Hoviyat / oidc-provider, DPoP grants:   {ratio:6.2f}   target >= 1.0"
              f"   ({'met' if ratio >= 1.0 else 'MISSED'})")  # fmt: skip
        print(f"oidc-provider's own DPoP cost:                 {peer_cost:6.1%}   (reference)")
        # On a shared machine the rates move with its other work; CPU per grant does not.
        cpu_ratio = peer["cpu_ms"] / dpop["cpu_ms"]
        print(f"CPU per DPoP grant, oidc-provider / Hoviyat:  {cpu_ratio:6.2f}   (>= 1: Hoviyat "
              "spends less per grant)")  # fmt: skip


PEER_SECRET = "bench-secret-bench-secret-bench-secret"  # bench_oidc's peer client
UNUSED_HEADER = "X-Bench-Unused"

if __name__ == "__main__":
    main()
