"""A real ``hoviyat serve`` behind the deploy nginx site, for the Debian ACME clients.

ACME is HTTPS only (RFC 8555 §6.1), and pkilint's CA/Browser Forum linter
refuses certificates whose AIA and CRL URLs name a loopback or internal host;
those URLs are built from ``HOVIYAT_ISSUER``. So the server runs as it would be
deployed: ``hoviyat serve`` on loopback, nginx with ``deploy/nginx/hoviyat.conf``
terminating TLS in front of it, under the public-looking issuer
``https://pki.hoviyat.ir``. The clients reach that name through a small HTTP
CONNECT proxy (``HTTPS_PROXY``, honoured by certbot, lego and curl) that sends
``pki.hoviyat.ir:443`` to nginx and refuses every other destination: nothing
on the system (``/etc/hosts``, the resolver) is touched. nginx's certificate
comes from a throwaway test CA each client is told to trust.

The server's validators dial what ``HOVIYAT_ACME_DNS_RESOLVER`` (a dnslib
server on loopback, :class:`LoopbackDns`) says the names are, at
``HOVIYAT_ACME_HTTP01_PORT``/``HOVIYAT_ACME_TLS_ALPN01_PORT``: 127.0.0.x
addresses where the clients' own responders listen.

This module imports nothing from pytest, so ``bench/bench_acme.py`` loads it by
path. Ports come from 18500-18599 and addresses from 127.0.0.70-90.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http.server
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from dnslib import QTYPE, RR, SOA, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer
from nginx_support import main_config

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
HOVIYAT = [sys.executable, "-m", "idp.cli"]
ISSUER_HOST = "pki.hoviyat.ir"  # public-looking: the CABF linter refuses internal names
ISSUER = f"https://{ISSUER_HOST}"
CA_NAME = "infrastructure"  # the issuing CA of the tls-server profiles
DIRECTORY = f"{ISSUER}/acme/{CA_NAME}/directory"
PORTS = range(18500, 18600)
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


# --- ports ---------------------------------------------------------------------------------


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1", *, udp: bool = False) -> int:
    """A port of 18500-18599 that nothing on ``host`` holds (TCP, and UDP if ``udp``),
    and not handed out before by this process (a caller may not have bound it yet)."""
    # pytest-xdist workers take interleaved shares of the range, so two workers never
    # pick the same port between one's probe and its server's bind.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = [port for port in PORTS if (port - PORTS.start) % count == int(worker or 0) % count]
    candidates = [port for port in share if port not in _handed_out] or share
    random.shuffle(candidates)  # two pytest-xdist workers rarely probe the same one first
    for port in candidates:
        kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
        try:
            for kind in kinds:
                with socket.socket(socket.AF_INET, kind) as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1} on {host}")


def wait_listening(host: str, port: int, timeout: float = 30, process: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"process exited before listening on {host}:{port}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


# --- a throwaway TLS CA for the front end (nginx, pebble) -----------------------------------


@dataclass
class FrontTls:
    """A root and one server certificate (for ``names`` and 127.0.0.1), as PEM files."""

    folder: Path
    names: tuple[str, ...] = (ISSUER_HOST, "localhost")

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME test front-end CA")])
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False
            )
            .sign(root_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(name) for name in self.names]
        sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.names[0])]))
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                critical=False,
            )
            .sign(root_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.root.write_bytes(root.public_bytes(pem))
        self.cert.write_bytes(leaf.public_bytes(pem))
        self.key.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )

    @property
    def root(self) -> Path:
        return self.folder / "front-root.pem"

    @property
    def cert(self) -> Path:
        return self.folder / "front.crt"

    @property
    def key(self) -> Path:
        return self.folder / "front.key"


# --- the CONNECT proxy that stands in for DNS on the client side ----------------------------


class ConnectProxy:
    """HTTP CONNECT to the destinations in ``routes`` ("host:port" -> (address, port)) only."""

    def __init__(self, routes: dict[str, tuple[str, int]], host: str = "127.0.0.1") -> None:
        self.routes = routes
        self.host = host
        self.port = free_port(host)
        self.refused: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("CONNECT proxy did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, self.port)
        )
        self._started.set()
        self._loop.run_forever()
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            route = self.routes.get(target.lower()) if method == "CONNECT" else None
            if route is None:
                self.refused.append(f"{method} {target}")
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection(*route)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


# --- the loopback DNS zone the server's validators (and lego) ask ---------------------------


class _Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self, dns: LoopbackDns) -> None:
        self.dns = dns

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.dns.queries.append((qtype, qname))
        if qtype in ("A", "ANY"):
            address = self.dns.address_of(qname)
            if address:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=0))
        if qtype in ("TXT", "ANY"):
            for value in self.dns.txt_of(qname):
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=0))
        if qtype == "SOA" and qname in self.dns.zones:
            reply.add_answer(RR(request.q.qname, QTYPE.SOA, rdata=self.dns.soa(qname), ttl=0))
        if not reply.rr:
            # NOERROR/NODATA with the zone's SOA in authority, so resolvers
            # looking for the zone cut (lego) find it.
            zone = self.dns.zone_of(qname)
            if zone:
                reply.add_auth(RR(DNSLabel(zone), QTYPE.SOA, rdata=self.dns.soa(zone), ttl=0))
        return reply


@dataclass
class LoopbackDns:
    """A dnslib server on loopback, UDP and TCP: every name under a zone is an A record of
    that zone's address (``hosts`` overrides single names); TXT records from ``txt`` and
    from files ``<txt_dir>/<name>`` (one value a line, written by lego's exec hook)."""

    zones: dict[str, str]  # zone apex -> address of every name under it
    host: str = "127.0.0.70"
    hosts: dict[str, str] = field(default_factory=dict)
    txt: dict[str, list[str]] = field(default_factory=dict)
    txt_dir: Path | None = None
    port: int = 0
    queries: list[tuple[str, str]] = field(default_factory=list)
    _servers: list[Any] = field(default_factory=list)

    @property
    def address(self) -> str:
        """host:port, as ``HOVIYAT_ACME_DNS_RESOLVER`` and lego's ``--dns.resolvers`` take it."""
        return f"{self.host}:{self.port}"

    def zone_of(self, name: str) -> str | None:
        for zone in sorted(self.zones, key=len, reverse=True):
            if name == zone or name.endswith("." + zone):
                return zone
        return None

    def address_of(self, name: str) -> str | None:
        if name in self.hosts:
            return self.hosts[name]
        zone = self.zone_of(name)
        return self.zones[zone] if zone and not name.startswith("_") else None

    def txt_of(self, name: str) -> list[str]:
        values = list(self.txt.get(name, []))
        if self.txt_dir is not None:
            path = self.txt_dir / name
            if path.is_file():
                values += [line for line in path.read_text().split() if line]
        return values

    def soa(self, zone: str) -> SOA:
        return SOA(f"ns.{zone}", f"hostmaster.{zone}", (1, 60, 60, 60, 0))

    def __enter__(self) -> LoopbackDns:
        if not self.port:
            self.port = free_port(self.host, udp=True)
        logger = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        for tcp in (False, True):
            server = DNSServer(
                _Zone(self), address=self.host, port=self.port, tcp=tcp, logger=logger
            )
            server.start_thread()
            self._servers.append(server)
        return self

    def __exit__(self, *_exc: object) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()


# --- a static http-01 responder (dehydrated's WELLKNOWN folder) -----------------------------


class WellKnownServer:
    """Serves ``folder``'s files at /.well-known/acme-challenge/<token> on host:port;
    with ``forge`` set, the key authorization of another account key instead."""

    def __init__(self, folder: Path, host: str, port: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.requests: list[str] = []
        self.forge = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                prefix = "/.well-known/acme-challenge/"
                token = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
                path = folder / token
                if not re.fullmatch(r"[A-Za-z0-9_-]+", token) or not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                if outer.forge:  # token.<thumbprint>: the right token, someone else's key
                    body = token.encode() + b"." + b"A" * 43
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                return

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WellKnownServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- nginx with the deploy site in front of hoviyat serve -----------------------------------


@contextlib.contextmanager
def nginx_front(folder: Path, upstream_port: int, tls: FrontTls) -> Iterator[int]:
    """deploy/nginx/hoviyat.conf on loopback (TLS from ``tls``); yields its HTTPS port."""
    if NGINX is None:
        raise RuntimeError("nginx is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    https_port, http_port = free_port(), free_port()
    text = (REPO / "deploy" / "nginx" / "hoviyat.conf").read_text()
    text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
    text = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", text)
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("/var/log/nginx/hoviyat.access.log", str(folder / "access.log"))
    text = text.replace("server_name id.example.ir;", f"server_name {ISSUER_HOST};")
    site = folder / "site.conf"
    site.write_text(text)
    (folder / "tls").mkdir(exist_ok=True)
    shutil.copyfile(tls.cert, folder / "tls" / "hoviyat.crt")
    shutil.copyfile(tls.key, folder / "tls" / "hoviyat.key")
    config = main_config(folder, site, worker_connections=1024)
    nginx = subprocess.Popen(
        [NGINX, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        try:
            wait_listening("127.0.0.1", https_port, timeout=10, process=nginx)
        except RuntimeError as error:
            raise RuntimeError(f"{error}: {(folder / 'error.log').read_text()}") from None
        yield https_port
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


# --- hoviyat serve ---------------------------------------------------------------------------


SERVICE = "demo-tax-portal"  # the demo agency whose servers order certificates


def acme_policy(
    service: str = SERVICE, policies: Path = REPO / "policies" / "services"
) -> tuple[str, str]:
    """(service code, first ACME domain) of ``service``'s policy (else of the first policy
    with an ``[acme]`` table naming domains): the entity's names are ordered under it."""
    found: list[tuple[str, str]] = []
    for path in sorted(policies.glob("*.toml")):
        policy = tomllib.loads(path.read_text())
        domains = policy.get("acme", {}).get("domains", [])
        if domains:
            code = str(policy["service_code"])
            found.append((code, str(domains[0]).removeprefix("*.").rstrip(".")))
    for code, domain in found:
        if code == service:
            return code, domain
    if found:
        return found[0]
    raise LookupError("no service policy has an [acme] table with domains")


def hoviyat_env(data_dir: Path, database_url: str, registry: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOVIYAT_")}
    env.update(
        HOVIYAT_DATA_DIR=str(data_dir),
        HOVIYAT_DATABASE_URL=database_url,
        HOVIYAT_REGISTRY_PATH=str(registry),
        HOVIYAT_REGISTRY_ADAPTER="synthetic",
        HOVIYAT_ISSUER=ISSUER,
        HOVIYAT_TRUSTED_PROXIES='["127.0.0.1"]',
        HOVIYAT_LOG_LEVEL="WARNING",
        **extra,
    )
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [*HOVIYAT, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    if done.returncode != 0:
        raise RuntimeError(f"hoviyat {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


def an_entity(registry: Path) -> str:
    """The national identifier of an active legal entity of the synthetic registry."""
    from verifiers.registry.synthetic import SyntheticRegistry

    today = datetime.date.today()
    source = SyntheticRegistry(registry)
    try:
        for entity in source.iter_entities(300):
            if entity.status == "active" and entity.registration_date <= today:
                return entity.national_id
    finally:
        source.close()
    raise LookupError("no active legal entity in the registry")


@dataclass(frozen=True)
class Eab:
    kid: str
    hmac_key: str  # base64url, as clients take it


def eab_from_json(text: str) -> Eab:
    """The key id and HMAC key from ``hoviyat acme eab create --json`` (or the admin API)."""
    report = json.loads(text)
    kid = next(report[k] for k in ("kid", "key_id", "eab_kid", "id") if k in report)
    hmac_key = next(report[k] for k in ("hmac_key", "eab_hmac_key", "hmac", "key") if k in report)
    return Eab(str(kid), str(hmac_key))


@dataclass
class ServedAcme:
    """A running Hoviyat ACME server and what a client needs to reach and trust it."""

    folder: Path
    env: dict[str, str]  # hoviyat's own environment (for the CLI)
    upstream: str  # http://127.0.0.1:<port>, hoviyat serve itself
    proxy: ConnectProxy
    tls: FrontTls
    dns: LoopbackDns
    service: str
    domain: str  # names are ordered under it
    national_id: str
    process: subprocess.Popen[bytes]
    directory: str = DIRECTORY

    def client_env(self, **extra: str) -> dict[str, str]:
        """The environment of a client process: through the proxy, trusting the test CA."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("HOVIYAT_") and key.lower() not in ("no_proxy", "all_proxy")
        }
        root = str(self.tls.root)
        env.update(
            HTTPS_PROXY=self.proxy.url,
            https_proxy=self.proxy.url,
            REQUESTS_CA_BUNDLE=root,  # certbot (python-requests)
            LEGO_CA_CERTIFICATES=root,  # lego
            CURL_CA_BUNDLE=root,  # dehydrated (curl)
            SSL_CERT_FILE=root,
            **extra,
        )
        return env

    def new_eab(self) -> Eab:
        """A fresh EAB key for the demo entity, by ``hoviyat acme eab create``."""
        out = run_cli(
            self.env,
            "acme",
            "eab",
            "create",
            "--national-id",
            self.national_id,
            "--service",
            self.service,
            "--json",
        )
        return eab_from_json(out)

    def audit(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The latest audit entries, oldest first (``hoviyat audit list --json``)."""
        entries: list[dict[str, Any]] = json.loads(
            run_cli(self.env, "audit", "list", "--json", "--limit", str(limit))
        )
        return entries

    def ca_root(self) -> Path:
        """Hoviyat's root certificate (PEM), the trust anchor of what it issues."""
        path = self.folder / "hoviyat-root.pem"
        if not path.exists():
            answer = httpx.get(f"{self.upstream}/ca/root.crt", timeout=10)
            answer.raise_for_status()
            data = answer.content
            if b"-----BEGIN" not in data:
                data = x509.load_der_x509_certificate(data).public_bytes(serialization.Encoding.PEM)
            path.write_bytes(data)
        return path

    def log(self) -> str:
        """The end of hoviyat serve's log (for assertion messages)."""
        return tail(self.folder / "serve.log")


@contextlib.contextmanager
def served_acme(
    folder: Path,
    database_url: str,
    registry: Path,
    *,
    client_address: str,
    http01_port: int = 0,
    tls_alpn01_port: int = 0,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ServedAcme]:
    """Initialise a data directory, start ``hoviyat serve`` behind nginx and the proxy.

    Every name under the policy's ACME domain resolves to ``client_address`` in the
    loopback DNS, where the client's responder listens on ``http01_port`` /
    ``tls_alpn01_port``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    service, domain = acme_policy()
    tls = FrontTls(folder / "front")
    with LoopbackDns({domain: client_address}, txt_dir=folder / "txt") as dns:
        (folder / "txt").mkdir(exist_ok=True)
        acme_env = {
            "HOVIYAT_ACME_DNS_RESOLVER": dns.address,
            **({"HOVIYAT_ACME_HTTP01_PORT": str(http01_port)} if http01_port else {}),
            **({"HOVIYAT_ACME_TLS_ALPN01_PORT": str(tls_alpn01_port)} if tls_alpn01_port else {}),
            **(extra_env or {}),
        }
        env = hoviyat_env(folder / "data", database_url, registry, **acme_env)
        run_cli(env, "init", "--json")
        run_cli(env, "ca", "init", "--json")
        port = free_port()
        log = (folder / "serve.log").open("wb")
        # The log goes to a file: a pipe nobody reads would block the server once full.
        process = subprocess.Popen(
            [*HOVIYAT, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            upstream = f"http://127.0.0.1:{port}"
            wait_ready(upstream, process, folder / "serve.log")
            with (
                nginx_front(folder / "nginx", port, tls) as https_port,
                ConnectProxy({f"{ISSUER_HOST}:443": ("127.0.0.1", https_port)}) as proxy,
            ):
                yield ServedAcme(
                    folder=folder,
                    env=env,
                    upstream=upstream,
                    proxy=proxy,
                    tls=tls,
                    dns=dns,
                    service=service,
                    domain=domain,
                    national_id=an_entity(registry),
                    process=process,
                )
        finally:
            stop(process)
            log.close()


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hoviyat serve exited: {tail(log)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("hoviyat serve did not become ready")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


@contextlib.contextmanager
def postgres_schema(url: str, schema: str) -> Iterator[str]:
    """``url`` with a fresh schema of its own on the search path, dropped afterwards."""
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    def run(statement: str) -> None:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(statement))
        admin.dispose()

    run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    run(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- judging what the clients got -----------------------------------------------------------


def split_pem(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def openssl_verify(root: Path, chain: Path, leaf: Path) -> subprocess.CompletedProcess[str]:
    """``openssl verify -x509_strict -purpose sslserver`` with Hoviyat's root as anchor."""
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-CAfile",
            str(root),
            "-untrusted",
            str(chain),
            str(leaf),
        ],
        capture_output=True,
        text=True,
    )


def pkilint_tls(leaf: Path) -> subprocess.CompletedProcess[str]:
    """pkilint's CA/Browser Forum TLS linter (RFC 5280 included) at WARNING."""
    return subprocess.run(
        [
            str(VENV_BIN / "lint_cabf_serverauth_cert"),
            "lint",
            "-s",
            "WARNING",
            "-t",
            "DV-FINAL-CERTIFICATE",
            str(leaf),
        ],
        capture_output=True,
        text=True,
    )


def leaf_only(source: Path, target: Path) -> Path:
    """The first certificate of a PEM chain file, alone in ``target``."""
    first = split_pem(source)[0]
    target.write_bytes(first.public_bytes(serialization.Encoding.PEM))
    return target


def ocsp_status(upstream: str, root: Path, issuer: Path, leaf: Path) -> str:
    """ "good", "revoked" or "unknown" from Hoviyat's OCSP responder (``openssl ocsp``)."""
    done = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-no_nonce",
            "-url",
            f"{upstream}/ocsp",
            "-CAfile",
            str(root),
            "-issuer",
            str(issuer),
            "-cert",
            str(leaf),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if "Response verify OK" not in done.stderr + done.stdout:
        raise RuntimeError(f"openssl ocsp: {done.stderr}{done.stdout}")
    found = re.search(rf"^{re.escape(str(leaf))}: (\w+)", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"openssl ocsp printed no status: {done.stdout}")
    return found.group(1)
