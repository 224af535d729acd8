"""Complete ACME orders per second with http-01 on loopback, Hoviyat beside Debian's pebble.

Run: ``.venv/bin/python bench/bench_acme.py [--orders 2000] [--concurrency 32]
[--workers 2] [--database-url postgresql+psycopg://.../db] [--no-pebble] [--no-hoviyat]``

One *complete order* (RFC 8555 §7.4) is everything a client does for a new
certificate of a name it has never validated: newOrder, fetch the
authorization, answer its http-01 challenge, the server's own validation
(it resolves the name through a loopback DNS server and fetches
``http://<name>/.well-known/acme-challenge/<token>`` from the bench's
responder on 127.0.0.80), poll the order until ``ready``, finalize with a
fresh P-256 CSR, poll until ``valid``, download the chain. Every order names
a different host, so no authorization is reused and every order is validated.

The client is a lean asyncio one (ES256 JWS with ``cryptography``, HTTP/1.1
keep-alive on raw streams, one connection per concurrent order) so that it
leaves the shared cores to the servers; ``--concurrency`` orders are in flight
at once. The account (with EAB for Hoviyat) is made before timing.

- Hoviyat: ``hoviyat serve --workers N`` on loopback over plain HTTP (TLS is
  nginx's job in the deployment; ``deploy/nginx``), SQLite in WAL mode or
  ``--database-url``, CA keys in encrypted files, pre-signing lint on.
- pebble (Debian's ``pebble``, Let's Encrypt's test server): HTTPS only, keeps
  everything in memory and signs without lint; run with PEBBLE_VA_NOSLEEP=1
  (no random validation delay) and PEBBLE_WFE_NONCEREJECT=0 (no deliberate
  badNonce), validating through the same DNS server and responder port.

Printed: orders/s (wall clock), p50/p99 of one order's duration, errors, the
CPU time per order of the server's processes (from /proc: the figure other work
on a shared machine does not distort) and of the bench process itself, the
ratio Hoviyat/pebble, and a per-request breakdown (requests of each kind
per order, mean answer time). step-ca: Debian 12 ships only its Go library
sources (golang-github-smallstep-certificates-dev 0.19), no ``step-ca``
binary, and no published orders/s figure of step-ca was found to set beside
these; pebble, Let's Encrypt's own test server, stands in as the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The loopback DNS server, ports and the hoviyat serve helpers the client tests use.
served = _load("served_acme", REPO / "tests" / "acme" / "served_acme.py")

RESPONDER = "127.0.0.80"  # every bench name resolves here; the http-01 responder listens
DNS_HOST = "127.0.0.70"


# --- a lean HTTP/1.1 client -----------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection; reopened when the server closes it."""

    def __init__(self, host: str, port: int, ssl: Any = None) -> None:
        self.host, self.port, self.ssl = host, port, ssl
        self.authority = f"{host}:{port}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl, limit=1 << 20
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = ""
    ) -> Answer:
        for attempt in (0, 1):
            if self.writer is None:
                await self._open()
            assert self.reader is not None and self.writer is not None
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.authority}\r\n"
            if body or method == "POST":
                head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            self.writer.write(head.encode() + b"\r\n" + body)
            try:
                return await asyncio.wait_for(self._read(method), 30)
            except TimeoutError:
                self.close()
                raise
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()  # a keep-alive connection the server had closed: once more
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _read(self, method: str) -> Answer:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if method != "HEAD" and status not in (204, 304):
            if headers.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    chunk = await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
                    chunks.append(chunk[:-2])
                body = b"".join(chunks)
            elif "content-length" in headers:
                body = await self.reader.readexactly(int(headers["content-length"]))
            else:
                body = await self.reader.read()
                self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, headers, body)


# --- ACME ------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AcmeError(Exception):
    pass


@dataclass
class Account:
    key: ec.EllipticCurvePrivateKey
    directory: dict[str, Any]
    kid: str = ""
    nonces: list[str] = field(default_factory=list)

    @property
    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big")),
        }

    @property
    def thumbprint(self) -> str:  # RFC 7638
        canonical = json.dumps(self.jwk, sort_keys=True, separators=(",", ":"))
        return b64(hashlib.sha256(canonical.encode()).digest())

    def sign(self, url: str, payload: Any, nonce: str) -> bytes:
        """The flattened JWS (RFC 8555 §6.2); ``payload`` None: POST-as-GET (§6.3)."""
        header: dict[str, Any] = {"alg": "ES256", "nonce": nonce, "url": url}
        if self.kid:
            header["kid"] = self.kid
        else:
            header["jwk"] = self.jwk
        protected = b64(json.dumps(header).encode())
        body = "" if payload is None else b64(json.dumps(payload).encode())
        der = self.key.sign(f"{protected}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return json.dumps(
            {"protected": protected, "payload": body, "signature": signature}
        ).encode()


class Client:
    """One worker: one connection, orders one after another."""

    def __init__(
        self, account: Account, connection: Connection, steps: dict[str, list[float]]
    ) -> None:
        self.account = account
        self.connection = connection
        self.steps = steps  # request kind -> durations (s), for the breakdown

    async def nonce(self) -> str:
        if self.account.nonces:
            return self.account.nonces.pop()
        answer = await self.connection.request(
            "HEAD", urlsplit(self.account.directory["newNonce"]).path
        )
        return answer.headers["replay-nonce"]

    async def post(self, url: str, payload: Any, step: str = "other") -> Answer:
        for _ in range(3):
            body = self.account.sign(url, payload, await self.nonce())
            started = time.perf_counter()
            answer = await self.connection.request(
                "POST", urlsplit(url).path, body, "application/jose+json"
            )
            self.steps.setdefault(step, []).append(time.perf_counter() - started)
            if "replay-nonce" in answer.headers:
                self.account.nonces.append(answer.headers["replay-nonce"])
            if answer.status == 400 and b"badNonce" in answer.body:
                continue
            if answer.status >= 400:
                raise AcmeError(f"{answer.status} {url}: {answer.body[:300]!r}")
            return answer
        raise AcmeError(f"badNonce three times at {url}")

    async def poll(self, url: str, until: str) -> dict[str, Any]:
        delay = 0.005
        while True:
            resource = (await self.post(url, None, f"poll {until}")).json()
            if resource["status"] == until:
                return dict(resource)
            if resource["status"] in ("invalid", "revoked", "deactivated", "expired"):
                raise AcmeError(f"{url} is {resource['status']}: {resource}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def order(self, name: str, answers: dict[str, bytes]) -> bytes:
        """One complete order for ``name``; the PEM chain."""
        created = await self.post(
            self.account.directory["newOrder"],
            {"identifiers": [{"type": "dns", "value": name}]},
            "newOrder",
        )
        order_url = created.headers["location"]
        order = created.json()
        tokens = []
        for authz_url in order["authorizations"]:
            authz = (await self.post(authz_url, None, "authorization")).json()
            if authz["status"] == "valid":
                continue
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            token = challenge["token"]
            tokens.append(token)
            answers[token] = f"{token}.{self.account.thumbprint}".encode()
            await self.post(challenge["url"], {}, "challenge")
        try:
            await self.poll(order_url, "ready")
        finally:
            for token in tokens:
                answers.pop(token, None)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        der = csr.public_bytes(serialization.Encoding.DER)
        finalized = (await self.post(order["finalize"], {"csr": b64(der)}, "finalize")).json()
        if finalized["status"] != "valid":
            finalized = await self.poll(order_url, "valid")
        certificate = await self.post(finalized["certificate"], None, "certificate")
        return certificate.body


async def new_account(
    connection: Connection, directory: dict[str, Any], eab: tuple[str, str] | None
) -> Account:
    account = Account(ec.generate_private_key(ec.SECP256R1()), directory)
    payload: dict[str, Any] = {"termsOfServiceAgreed": True}
    if eab is not None:  # RFC 8555 §7.3.4
        kid, key = eab
        protected = b64(
            json.dumps({"alg": "HS256", "kid": kid, "url": directory["newAccount"]}).encode()
        )
        inner = b64(json.dumps(account.jwk).encode())
        mac = hmac.new(b64decode(key), f"{protected}.{inner}".encode(), hashlib.sha256).digest()
        payload["externalAccountBinding"] = {
            "protected": protected,
            "payload": inner,
            "signature": b64(mac),
        }
    answer = await Client(account, connection, {}).post(directory["newAccount"], payload)
    account.kid = answer.headers["location"]
    return account


# --- the http-01 responder -------------------------------------------------------------------


class Responder(asyncio.Protocol):
    """Answers GET /.well-known/acme-challenge/<token> from ``answers``; counts fetches."""

    answers: ClassVar[dict[str, bytes]] = {}
    fetched = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            parts = head.split(b" ", 2)
            path = parts[1].decode("latin-1") if len(parts) > 1 else ""
            token = path.rsplit("/", 1)[-1]
            body = Responder.answers.get(token) if path.startswith("/.well-known/") else None
            Responder.fetched += 1
            if body is None:
                self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    orders: int
    seconds: float
    durations: list[float]
    errors: dict[str, int]
    steps: dict[str, list[float]]
    server_cpu: float  # CPU seconds the server's processes spent in the timed part
    client_cpu: float  # and this bench process (client, DNS, responder)

    @property
    def rate(self) -> float:
        return len(self.durations) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.durations)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    def breakdown(self) -> str:
        """Requests per order and mean answer time of each kind of request."""
        done = max(len(self.durations), 1)
        return ", ".join(
            f"{step} {len(times) / done:.1f}/order {1000 * sum(times) / len(times):.0f} ms"
            for step, times in self.steps.items()
            if times
        )

    def line(self) -> str:
        errors = sum(self.errors.values())
        return (
            f"{self.server:8} {len(self.durations):6} orders in {self.seconds:6.2f} s: "
            f"{self.rate:7.1f} orders/s   p50 {self.percentile(0.5):7.1f} ms   "
            f"p99 {self.percentile(0.99):7.1f} ms   errors {errors}   "
            f"server CPU {self.cpu_per_order(self.server_cpu):5.1f} ms/order, "
            f"bench {self.cpu_per_order(self.client_cpu):4.1f}"
        )

    def cpu_per_order(self, seconds: float) -> float:
        return 1000 * seconds / max(len(self.durations), 1)


async def drive(
    label: str,
    host: str,
    port: int,
    ssl: Any,
    directory_path: str,
    eab: tuple[str, str] | None,
    names: list[str],
    concurrency: int,
    warmup: int,
    server_pid: int,
) -> Result:
    first = Connection(host, port, ssl)
    directory = (await first.request("GET", directory_path)).json()
    account = await new_account(first, directory, eab)
    answers = Responder.answers
    steps: dict[str, list[float]] = {}
    clients = [Client(account, Connection(host, port, ssl), steps) for _ in range(concurrency)]
    queue = list(reversed(names))
    durations: list[float] = []
    errors: dict[str, int] = {}

    async def work(client: Client, timed: bool) -> None:
        while queue:
            name = queue.pop()
            started = time.perf_counter()
            try:
                await client.order(name, answers)
            except (
                AcmeError,
                OSError,
                TimeoutError,
                asyncio.IncompleteReadError,
                KeyError,
                ValueError,
            ) as error:
                kind = f"{type(error).__name__}: {str(error)[:160]}"
                errors[kind] = errors.get(kind, 0) + 1
                continue
            if timed:
                durations.append(time.perf_counter() - started)

    # A few orders first, untimed: connections opened, workers' imports and caches warm.
    warm = [queue.pop() for _ in range(min(warmup, len(queue)))]
    warm_queue = list(reversed(warm))
    saved, queue = queue, warm_queue
    await asyncio.gather(*(work(c, False) for c in clients))
    queue = saved
    errors.clear()
    steps.clear()
    server_before, client_before = server_cpu(server_pid), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(work(c, True) for c in clients))
    seconds = time.perf_counter() - started
    server_used = server_cpu(server_pid) - server_before
    client_used = time.process_time() - client_before
    for client in clients:
        client.connection.close()
    first.close()
    return Result(
        label, len(names) - len(warm), seconds, durations, errors, steps, server_used, client_used
    )


def server_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children (the uvicorn workers), from
    /proc: on a shared machine, CPU per order says more than wall-clock rates."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    total = 0
    for each in [pid, *(int(child) for child in found.stdout.split())]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@contextlib.contextmanager
def responder(port: int) -> Iterator[None]:
    """The http-01 responder on RESPONDER:port, in the bench's own event loop."""
    loop = asyncio.get_event_loop()
    server = loop.run_until_complete(loop.create_server(Responder, RESPONDER, port))
    try:
        yield
    finally:
        server.close()


@contextlib.contextmanager
def hoviyat(
    folder: Path, dns: Any, http01_port: int, workers: int, database_url: str
) -> Iterator[tuple[int, tuple[str, str], int]]:
    """``hoviyat serve`` over plain HTTP on loopback; (port, EAB kid and key, pid)."""
    from verifiers.registry.synthetic import seed

    registry = folder / "registry.db"
    seed(registry, persons=50, entities=20, seed=7)
    port = served.free_port()
    env = served.hoviyat_env(
        folder / "data",
        database_url,
        registry,
        HOVIYAT_ACME_DNS_RESOLVER=dns.address,
        HOVIYAT_ACME_HTTP01_PORT=str(http01_port),
    )
    env["HOVIYAT_ISSUER"] = f"http://127.0.0.1:{port}"
    env.pop("HOVIYAT_TRUSTED_PROXIES")
    served.run_cli(env, "init", "--json")
    served.run_cli(env, "ca", "init", "--json")
    service, _ = served.acme_policy()
    eab = served.eab_from_json(
        served.run_cli(
            env,
            "acme",
            "eab",
            "create",
            "--national-id",
            served.an_entity(registry),
            "--service",
            service,
            "--json",
        )
    )
    log_path = folder / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*served.HOVIYAT, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        served.wait_ready(f"http://127.0.0.1:{port}", process, log_path)
        yield port, (eab.kid, eab.hmac_key), process.pid
    finally:
        served.stop(process)
        log.close()
        if served.tail(log_path):
            print(f"hoviyat serve log (end):\n{served.tail(log_path, 2000)}")


@contextlib.contextmanager
def pebble(folder: Path, dns: Any, http01_port: int) -> Iterator[tuple[int, Any, int]]:
    """Debian's pebble on loopback with its own test certificate; (port, ssl context, pid)."""
    import ssl

    binary = shutil.which("pebble")
    if binary is None:
        raise RuntimeError("pebble is not installed (apt-get install pebble)")
    tls = served.FrontTls(folder / "pebble-tls")
    port = served.free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{served.free_port()}",
            "certificate": str(tls.cert),
            "privateKey": str(tls.key),
            "httpPort": http01_port,
            "tlsPort": served.free_port(RESPONDER),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (folder / "pebble.json").write_text(json.dumps(config))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    log = (folder / "pebble.log").open("w")
    process = subprocess.Popen(
        [binary, "-config", str(folder / "pebble.json"), "-dnsserver", dns.address],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        served.wait_listening("127.0.0.1", port, process=process)
        context = ssl.create_default_context(cafile=str(tls.root))
        yield port, context, process.pid
    finally:
        served.stop(process)
        log.close()


def names(domain: str, prefix: str, count: int) -> list[str]:
    return [f"{prefix}{index}.bench.{domain}" for index in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="timed orders per server")
    parser.add_argument("--warmup", type=int, default=100, help="untimed orders first")
    parser.add_argument("--concurrency", type=int, default=32, help="orders in flight")
    parser.add_argument("--workers", type=int, default=2, help="hoviyat serve --workers")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (empty: SQLite)")
    parser.add_argument("--no-pebble", action="store_true")
    parser.add_argument("--no-hoviyat", action="store_true")
    args = parser.parse_args()

    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    service, domain = served.acme_policy()
    total = args.orders + args.warmup
    http01_port = served.free_port(RESPONDER)
    results: list[Result] = []
    print(
        f"bench_acme: {args.orders} timed orders (+{args.warmup} warm-up), "
        f"{args.concurrency} in flight, http-01 via {RESPONDER}:{http01_port}, "
        f"names under {domain} ({service}); {os.cpu_count()} CPUs, "
        f"load {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-acme-") as temp,
        served.LoopbackDns({domain: RESPONDER}, host=DNS_HOST) as dns,
        responder(http01_port),
    ):
        folder = Path(temp)
        run_id = str(int(time.time()))
        if not args.no_hoviyat:
            with contextlib.ExitStack() as stack:
                database_url = args.database_url
                if database_url:  # a schema of its own, dropped afterwards
                    schema = served.postgres_schema(database_url, f"bench_acme_{run_id}")
                    database_url = stack.enter_context(schema)
                port, eab, pid = stack.enter_context(
                    hoviyat(folder / "hoviyat", dns, http01_port, args.workers, database_url)
                )
                result = loop.run_until_complete(
                    drive(
                        f"hoviyat ({'PostgreSQL' if database_url else 'SQLite'}, "
                        f"{args.workers} workers)",
                        "127.0.0.1",
                        port,
                        None,
                        "/acme/infrastructure/directory",
                        eab,
                        names(domain, f"h{run_id}-", total),
                        args.concurrency,
                        args.warmup,
                        pid,
                    )
                )
                results.append(result)
                print(result.line(), flush=True)
        if not args.no_pebble:
            with pebble(folder / "pebble", dns, http01_port) as (port, context, pid):
                result = loop.run_until_complete(
                    drive(
                        "pebble",
                        "127.0.0.1",
                        port,
                        context,
                        "/dir",
                        None,
                        names(domain, f"p{run_id}-", total),
                        args.concurrency,
                        args.warmup,
                        pid,
                    )
                )
                results.append(result)
                print(result.line(), flush=True)
    for result in results:
        for kind, count in sorted(result.errors.items(), key=lambda item: -item[1])[:5]:
            print(f"  {result.server} error x{count}: {kind}")
        print(f"  {result.server}: {result.breakdown()}")
    print()
    for result in results:
        print(result.line())
    if len(results) == 2 and results[1].rate:
        print(f"ratio hoviyat/pebble: {results[0].rate / results[1].rate:.2f}")
    if results and not args.no_hoviyat:
        verdict = "meets" if results[0].rate >= 200 else "misses"
        print(f"target >= 200 complete orders/s: {verdict} ({results[0].rate:.1f})")


if __name__ == "__main__":
    main()
