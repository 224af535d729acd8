"""OpenID Connect figures over HTTP, ``hoviyat serve --workers 2``, node-oidc-provider as yardstick.

    .venv/bin/python bench/bench_oidc.py                      # SQLite, 10 s per load
    .venv/bin/python bench/bench_oidc.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/bench_oidc.py --duration 5 --skip-peer

Prints, each with p99 latency:

- client-credentials grants/s (``wrk`` POSTing ``/token``);
- full logins/s: ``/authorize`` → login page → national code + birth date
  (level low) → consent remembered → ``/authorize/complete`` → code exchange
  at ``/token``; driven by wrk running ``bench/login_flow.lua`` (one connection
  per wrk thread, a new browser per login), or with ``--login-driver python``
  by Python httpx processes, which spend the same 2 cores as the server;
- refresh grants/s (``wrk``, each request spending a distinct refresh token);
- userinfo/s (``wrk``, one access token);
- the same client-credentials load against node ``oidc-provider`` (npm,
  installed into ``bench/.peers/``, in-memory store, one process) issuing the
  same kind of token as Hoviyat (ES256 JWT, RFC 9068), alternating with
  Hoviyat's rounds (``--rounds``), and the ratio of the two medians; then the
  peer's default opaque, unsigned tokens, for reference.

Targets (issue 4): 1,500 client-credentials grants/s, ratio >= 1.0, 300 full
logins/s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PEERS = ROOT / "bench" / ".peers" / "oidc-provider"

import httpx  # noqa: E402
from common import cpu_seconds, settings_env  # noqa: E402

REDIRECT_URI = "https://rp.bench.example/callback"
SCOPE = "openid profile"
HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"')

# The peer issues what Hoviyat issues: ES256-signed RFC 9068 JWT access tokens
# (oidc-provider does that for a resource server whose accessTokenFormat is
# 'jwt'). With TOKEN_FORMAT=opaque it keeps its default: random handles kept in
# memory, no signature at all -- printed for reference, not compared.
PEER_SCRIPT = """
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';
const port = Number(process.env.PORT);
const jwt = process.env.TOKEN_FORMAT !== 'opaque';
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const features = { clientCredentials: { enabled: true }, devInteractions: { enabled: false } };
if (jwt) {
  features.resourceIndicators = {
    enabled: true,
    defaultResource: () => 'urn:bench:api',
    useGrantedResource: () => true,
    getResourceServerInfo: () => ({ scope: 'api', audience: 'urn:bench:api', accessTokenTTL: 300,
                                    accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
  };
}
// bench_dpop: DPoP (RFC 9449) as the library ships it (no server nonces, replay
// detection in its in-memory store).
if (process.env.DPOP === '1') features.dPoP = { enabled: true };
const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks: { keys: [{ ...key, kid: 'bench', alg: 'ES256', use: 'sig' }] },
  clients: [{ client_id: 'bench', client_secret: 'bench-secret-bench-secret-bench-secret',
              grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
              id_token_signed_response_alg: 'ES256' }],
  features,
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


# --- wrk ---------------------------------------------------------------------------------


def wrk(url: str, script: str, duration: int, connections: int, workdir: Path) -> dict[str, float]:
    lua = workdir / f"load-{secrets.token_hex(4)}.lua"
    lua.write_text(script)
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = _millis(re.search(r"99%\s+([\d.]+\w+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    requests = re.search(r"(\d+) requests in", output)
    return {
        "rate": rate,
        "count": float(requests.group(1)) if requests else 0.0,
        "p99_ms": p99,
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def _millis(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post_script(path: str, body: str, authorization: str) -> str:
    return f"""
wrk.method = "POST"
wrk.path = "{path}"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "{authorization}"
"""


def refresh_script(tokens_file: Path, authorization: str) -> str:
    # Each wrk thread walks its own stride of the token list: every request
    # spends a refresh token nobody else spends.
    return f"""
local tokens = {{}}
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args)
  for line in io.lines("{tokens_file}") do tokens[#tokens + 1] = line end
  position = tid + 1
end
function request()
  local token = tokens[position]
  position = position + 2
  return wrk.format("POST", "/token", {{
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "{authorization}"}},
    "grant_type=refresh_token&refresh_token=" .. token)
end
"""


def get_script(path: str, authorization: str) -> str:
    return f"""
wrk.method = "GET"
wrk.path = "{path}"
wrk.headers["Authorization"] = "{authorization}"
"""


# --- full logins -------------------------------------------------------------------------


def one_login(browser: httpx.Client, client_id: str, secret: str, person: tuple[str, str]) -> dict:
    browser.cookies.clear()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
        "scope": SCOPE, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256",
    }  # fmt: skip
    page = browser.get("/authorize", params=params)
    while page.headers.get("location", "").startswith("/"):
        page = browser.get(page.headers["location"])
    form = dict(HIDDEN.findall(page.text))
    form.update({"national_code": person[0], "birth_date": person[1]})
    response = browser.post("/login/identify", data=form)
    while response.headers.get("location", "").startswith("/"):
        response = browser.get(response.headers["location"])
    location = response.headers.get("location", "")
    if not location.startswith(REDIRECT_URI):
        raise RuntimeError(f"login did not return to the client: {response.status_code}")
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = browser.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code,
              "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        auth=(client_id, secret),
    )  # fmt: skip
    tokens.raise_for_status()
    return tokens.json()


def login_worker(args: tuple[str, str, str, list[tuple[str, str]], float, int]) -> list[float]:
    base, client_id, secret, persons, deadline, offset = args
    latencies: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as browser:
        index = offset
        while time.time() < deadline:
            started = time.perf_counter()
            one_login(browser, client_id, secret, persons[index % len(persons)])
            latencies.append(time.perf_counter() - started)
            index += 7
    return latencies


LOGIN_LUA = ROOT / "bench" / "login_flow.lua"


def server_pids(server: subprocess.Popen[bytes]) -> list[int]:
    """The ``hoviyat serve`` supervisor and its workers (their CPU time is the server's cost)."""
    found = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True)
    return [server.pid, *(int(pid) for pid in found.stdout.split())]


def wrk_logins(
    base: str, client_id: str, secret: str, persons: list, duration: int, connections: int,
    workdir: Path,
) -> dict[str, float]:  # fmt: skip
    """Full logins from wrk (bench/login_flow.lua): one connection per wrk thread, one
    browser per login, a PKCE pair of its own per login (made here: Lua has no SHA-256)."""
    lines = []
    for index in range(max(20_000, duration * 1_500)):
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        code, born = persons[(index * 7) % len(persons)]
        lines.append(f"{verifier} {challenge} {code} {born}")
    inputs = workdir / "logins.txt"
    inputs.write_text("\n".join(lines) + "\n")
    output = subprocess.run(
        ["wrk", f"-t{connections}", f"-c{connections}", f"-d{duration}s", "-s", str(LOGIN_LUA),
         base, "--", str(inputs), client_id, basic(client_id, secret), REDIRECT_URI, SCOPE,
         str(connections)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.search(
        r"LOGINS (\d+) FAILED (\d+) SECONDS ([\d.]+) P50_MS ([\d.]+) P99_MS ([\d.]+) "
        r"REQUESTS (\d+)",
        output,
    )
    if found is None:
        raise RuntimeError(f"wrk login driver printed no figures:\n{output}")
    count, failed, seconds, _, p99, requests = (float(value) for value in found.groups())
    for reason in re.findall(r"FAILED_AT (.+)", output):
        print(f"  login failures at {reason}")
    return {
        "rate": count / seconds, "p99_ms": p99, "count": count, "non_2xx": failed,
        "requests_per_login": requests / count if count else float("nan"),
    }  # fmt: skip


def logins(base: str, client_id: str, secret: str, persons: list, duration: int, procs: int):
    deadline = time.time() + duration
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        per_worker = pool.map(
            login_worker,
            [(base, client_id, secret, persons, deadline, i * 97) for i in range(procs)],
        )
    latencies = sorted(latency for chunk in per_worker for latency in chunk)
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    return {"rate": len(latencies) / duration, "p99_ms": p99, "count": len(latencies)}


# --- set-up ------------------------------------------------------------------------------


def scratch_schema(base_url: str) -> tuple[str, str]:
    """A fresh PostgreSQL schema for one run: (url that selects it, schema name)."""
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    schema = f"bench_oidc_{secrets.token_hex(4)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options={quote(f'-csearch_path={schema}')}", schema


def drop_schema(base_url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def prepare(workdir: Path, database_url: str | None, port: int) -> dict[str, Any]:
    from idp.cli.setup import initialise
    from idp.clients import create_client
    from idp.login.consent import remember_consent
    from idp.oidc.claims import consent_claims
    from idp.settings import Settings
    from idp.storage.engine import Database
    from policies.service_policy import load_service_policies
    from verifiers.registry.synthetic import SyntheticRegistry, seed

    registry_path = workdir / "registry.db"
    seed(registry_path, persons=3000, entities=10, seed=11)
    settings = Settings(
        data_dir=workdir / "data",
        database_url=database_url or f"sqlite:///{workdir / 'hoviyat.db'}",
        registry_path=registry_path,
        issuer=f"http://127.0.0.1:{port}",
    )
    report = initialise(settings)
    demo = {c["client_id"]: c["client_secret"] for c in report["demo_clients"]}
    registry = SyntheticRegistry(registry_path)
    persons = [
        (person.national_code, person.birth_date.isoformat())
        for person, _ in registry.iter_persons(3000)
        if person.alive
    ][:1000]
    registry.close()
    policy = load_service_policies()["demo-tax-portal"]
    claims = consent_claims(SCOPE.split(), {}, policy)
    database = Database(settings.resolved_database_url)
    with database.session() as session:
        from idp.secrets import load_secrets

        keys = load_secrets(settings.resolved_secrets_file)
        created = create_client(
            session, keys.client_secret_key, name="bench RP", service_code="demo-tax-portal",
            client_id="bench-rp", grant_types=["authorization_code", "refresh_token"],
            redirect_uris=[REDIRECT_URI],
        )  # fmt: skip
        for national_code, _ in persons:
            remember_consent(session, national_code, "bench-rp", claims)
    database.dispose()
    return {
        "settings": settings,
        "persons": persons,
        "cc": ("demo-bank", demo["demo-bank"]),
        "rp": ("bench-rp", created.client_secret),
    }


def refresh_tokens(settings: Any, grant_id: str, count: int, path: Path) -> None:
    """Many live refresh tokens of one real grant, so each request spends its own."""
    from sqlalchemy import insert

    from idp.oidc.grants import digest
    from idp.storage.engine import Database
    from idp.storage.oidc import OidcRefreshToken

    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    expires = datetime.now(UTC) + timedelta(hours=1)
    rows = [
        {"token_hash": digest(t), "grant_id": grant_id, "client_id": "bench-rp",
         "parent_hash": None, "created_at": datetime.now(UTC), "expires_at": expires,
         "rotated_at": None}
        for t in tokens
    ]  # fmt: skip
    database = Database(settings.resolved_database_url)
    with database.session() as session:
        session.execute(insert(OidcRefreshToken), rows)
    database.dispose()
    path.write_text("\n".join(tokens) + "\n")


def start_hoviyat(settings: Any, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = settings_env(settings, HOVIYAT_LOGIN_ATTEMPTS_PER_NATIONAL_CODE_PER_HOUR="1000000")
    # The product's own command: two uvicorn workers, each on its own
    # SO_REUSEPORT socket (idp.serving), with multi-process metrics.
    process = subprocess.Popen(
        [sys.executable, "-m", "idp.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2"],
        env=env, stdout=(workdir / "uvicorn.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/.well-known/openid-configuration", process, "uvicorn")
    return process


def start_peer(
    port: int, token_format: str = "jwt", dpop: bool = False
) -> subprocess.Popen[bytes] | None:
    if not (PEERS / "node_modules" / "oidc-provider").exists():
        print("node oidc-provider not installed: cd bench/.peers/oidc-provider && "
              "npm init -y && npm install oidc-provider@8")  # fmt: skip
        return None
    (PEERS / "peer.mjs").write_text(PEER_SCRIPT)
    process = subprocess.Popen(
        ["node", "peer.mjs"], cwd=PEERS,
        env={**os.environ, "PORT": str(port), "TOKEN_FORMAT": token_format,
             "DPOP": "1" if dpop else "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/.well-known/openid-configuration", process, "node")
    return process


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def run_logins(args: Any, base: str, setup: dict[str, Any], workdir: Path) -> dict[str, Any]:
    rp_id, rp_secret = setup["rp"]
    if args.login_driver == "wrk":
        figures: dict[str, Any] = wrk_logins(
            base, rp_id, rp_secret, setup["persons"], args.duration, args.login_connections,
            workdir,
        )  # fmt: skip
        figures["driver"] = f"wrk + bench/login_flow.lua, {args.login_connections} browsers"
        return figures
    figures = logins(base, rp_id, rp_secret, setup["persons"], args.duration, args.login_processes)
    figures["driver"] = f"{args.login_processes} Python httpx processes"
    figures["requests_per_login"] = float("nan")
    return figures


def measured(pids: list[int], load: Any) -> tuple[dict[str, Any], float]:
    """Run ``load``; return its figures and the server's CPU seconds meanwhile."""
    before = cpu_seconds(pids)
    figures = load()
    return figures, cpu_seconds(pids) - before


def cpu_per(cpu: float, figures: dict[str, Any]) -> str:
    count = figures.get("count") or figures["rate"] * figures.get("seconds", 0)
    return f"{cpu / count * 1000:.2f}" if count else "n/a"


def show(name: str, figures: dict[str, float]) -> None:
    extra = ""
    if figures.get("non_2xx"):
        extra = f"  ({int(figures['non_2xx'])} non-2xx: figure invalid)"
    print(f"{name:38s} {figures['rate']:9.1f}/s   p99 {figures['p99_ms']:8.1f} ms{extra}")


CC_BODY = "grant_type=client_credentials"
PEER_AUTH = basic("bench", "bench-secret-bench-secret-bench-secret")


def compare_client_credentials(
    args: Any, base: str, cc_auth: str, pids: list[int], workdir: Path
) -> subprocess.Popen[bytes] | None:
    """Hoviyat and the node peer in alternating rounds, so both meet the same machine.

    This VM's speed drifts by a fifth within minutes; alternating the two and
    comparing medians keeps a slow spell from landing on one side only. Both
    servers stay up; the idle one costs nothing. Returns the peer to stop.
    """
    peer_port = free_port()
    peer = None if args.skip_peer else start_peer(peer_port, "jwt")
    peer_url = f"http://127.0.0.1:{peer_port}"
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    cpu_ms: list[float] = []
    wrk(base, post_script("/token", CC_BODY, cc_auth), 2, args.connections, workdir)
    if peer is not None:
        wrk(peer_url, post_script("/token", CC_BODY, PEER_AUTH), 2, args.connections, workdir)
    for _ in range(args.rounds):
        figures, cpu = measured(pids, lambda: wrk(
            base, post_script("/token", CC_BODY, cc_auth), args.duration,
            args.connections, workdir))  # fmt: skip
        ours.append(figures)
        cpu_ms.append(cpu / max(figures["count"], 1) * 1000)
        if peer is not None:
            theirs.append(wrk(peer_url, post_script("/token", CC_BODY, PEER_AUTH),
                              args.duration, args.connections, workdir))  # fmt: skip
    cc = _median(ours)
    show("client-credentials grants", cc)
    print(f"  server CPU {statistics.median(cpu_ms):.2f} ms per grant; rounds: "
          f"{_rates(ours)}/s")  # fmt: skip
    if peer is not None:
        node = _median(theirs)
        show("node oidc-provider (ES256 JWT)", node)
        print(f"  rounds: {_rates(theirs)}/s")
        print(f"{'  ratio Hoviyat / oidc-provider':38s} {cc['rate'] / node['rate']:9.2f}"
              f"   (median of {args.rounds} alternating rounds)")  # fmt: skip
        stop(peer)
        # The peer's default tokens (random handles, no signature), for reference.
        opaque_port = free_port()
        peer = start_peer(opaque_port, "opaque")
        opaque = post_script("/token", CC_BODY, PEER_AUTH)
        wrk(f"http://127.0.0.1:{opaque_port}", opaque, 2, args.connections, workdir)
        show("node oidc-provider (opaque, unsigned)", wrk(
            f"http://127.0.0.1:{opaque_port}", opaque, args.duration, args.connections,
            workdir))  # fmt: skip
    return peer


def _rates(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{run['rate']:.0f}" for run in runs)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (its own p99 with it)."""
    return sorted(runs, key=lambda run: run["rate"])[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument(
        "--login-driver", choices=("wrk", "python"), default="wrk",
        help="wrk with bench/login_flow.lua (cheap), or Python httpx processes (fallback)",
    )  # fmt: skip
    parser.add_argument("--login-connections", type=int, default=32, help="wrk login browsers")
    parser.add_argument("--login-processes", type=int, default=4, help="Python driver processes")
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL server URL (a scratch schema is made)"
    )
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="alternating client-credentials rounds of Hoviyat and the peer (median taken)",
    )  # fmt: skip
    parser.add_argument(
        "--loads", default="cc,logins,refresh,userinfo",
        help="comma-separated subset of cc,logins,refresh,userinfo",
    )  # fmt: skip
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-oidc-"))
    port = free_port()
    server = peer = None
    schema = None
    database_url = None
    if args.database_url:
        database_url, schema = scratch_schema(args.database_url)
    try:
        setup = prepare(workdir, database_url, port)
        settings = setup["settings"]
        base = settings.issuer
        server = start_hoviyat(settings, port, workdir)
        backend = (
            "PostgreSQL" if settings.resolved_database_url.startswith("postgres") else "SQLite"
        )
        print(f"Hoviyat: hoviyat serve --workers 2, {backend}; wrk -t2 -c{args.connections}, "
              f"{args.duration} s per load")  # fmt: skip
        print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
              f"on {os.cpu_count()} cores")  # fmt: skip
        rp_id, rp_secret = setup["rp"]
        with httpx.Client(base_url=base, timeout=30) as browser:
            warm = one_login(browser, rp_id, rp_secret, setup["persons"][0])
        loads = set(args.loads.split(","))
        cc_auth = basic(*setup["cc"])
        pids = server_pids(server)
        if "cc" in loads:
            peer = compare_client_credentials(args, base, cc_auth, pids, workdir)

        if "logins" in loads:
            login, cpu = measured(pids, lambda: run_logins(args, base, setup, workdir))
            show(f"full logins ({args.login_driver})", login)
            print(f"  driver: {login['driver']}; server CPU {cpu_per(cpu, login)} ms per login, "
                  f"{login['requests_per_login']:.1f} HTTP requests per login")  # fmt: skip

        claims = json.loads(base64.urlsafe_b64decode(warm["access_token"].split(".")[1] + "=="))
        if "refresh" in loads:
            tokens_file = workdir / "refresh.txt"
            refresh_tokens(settings, claims["gid"], 60_000, tokens_file)
            refresh, cpu = measured(pids, lambda: wrk(
                base, refresh_script(tokens_file, basic(rp_id, rp_secret)), args.duration,
                args.connections, workdir))  # fmt: skip
            show("refresh grants", refresh)
            print(f"  server CPU {cpu_per(cpu, refresh)} ms per refresh grant")
        if "userinfo" in loads:
            info, cpu = measured(pids, lambda: wrk(
                base, get_script("/userinfo", f"Bearer {warm['access_token']}"),
                args.duration, args.connections, workdir))  # fmt: skip
            show("userinfo", info)
            print(f"  server CPU {cpu_per(cpu, info)} ms per userinfo")
    finally:
        stop(server)
        stop(peer)
        print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        if schema is not None:
            drop_schema(args.database_url, schema)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
