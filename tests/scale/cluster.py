"""Several ``hoviyat serve`` hosts over one PostgreSQL behind deploy/nginx, for the scale tests.

Each host listens on its own loopback address (127.0.0.2, 127.0.0.3, ...) with a
data folder of its own, copied from the one ``hoviyat init`` made: the secrets
file and CA keys travel to every host, as a deployment's configuration
management would carry them. nginx runs ``deploy/nginx/hoviyat.conf`` with its
upstream block listing every host, so a citizen's browser and an agency's
client reach whichever host nginx picks, and a test can also reach one host
directly to make two hosts race for the same row.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from nginx_support import main_config, site_tls
from served import HOVIYAT, children, hoviyat_env
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "deploy" / "nginx" / "hoviyat.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@dataclass
class Host:
    address: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a host that loses power: no drain, no goodbye."""
        for pid in children(self.process.pid):
            _kill(pid)
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in children(self.process.pid):
            _kill(pid)


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Cluster:
    url: str  # the public issuer: nginx's https address
    hosts: list[Host]
    env: dict[str, str]
    database_url: str
    folder: Path
    secrets: dict[str, str]  # the demo clients' secrets by client id

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=False, timeout=30)


def scratch_schema(base_url: str, name: str) -> str:
    """A fresh schema in the test database and a URL whose search_path is it."""
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    admin.dispose()
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options=-csearch_path%3D{name}"


def drop_schema(base_url: str, name: str) -> None:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


def _site(folder: Path, hosts: list[tuple[str, int]], https_port: int) -> Path:
    """deploy/nginx/hoviyat.conf with its upstream listing ``hosts`` and loopback listeners."""
    text_ = SITE.read_text()
    servers = "".join(
        f"    server {address}:{port} max_fails=1 fail_timeout=2s;\n" for address, port in hosts
    )
    text_, replaced = re.subn(r"    server 127\.0\.0\.1:8000;\n", servers, text_)
    assert replaced == 1, "the deploy config's upstream block changed shape"
    text_ = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", text_)
    text_ = text_.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text_ = text_.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    text_ = text_.replace("/var/log/nginx/hoviyat.access.log", str(folder / "access.log"))
    site = folder / "site.conf"
    site.write_text(text_)
    return site


def _wait(url: str, alive: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert alive.poll() is None, f"exited early:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/readyz", timeout=1, verify=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready:\n{log.read_text()[-3000:]}")


@contextmanager
def cluster(
    folder: Path, database_url: str, registry: Path, count: int = 3, **extra: str
) -> Iterator[Cluster]:
    """``count`` hosts over ``database_url`` behind nginx; stopped and cleaned up on exit."""
    assert NGINX is not None
    https_port = free_port()
    issuer = f"https://127.0.0.1:{https_port}"
    base = hoviyat_env(
        folder / "data", database_url, registry,
        HOVIYAT_ISSUER=issuer, HOVIYAT_TRUSTED_PROXIES='["127.0.0.1"]', **extra,
    )  # fmt: skip
    made = subprocess.run([*HOVIYAT, "init", "--json"], env=base, capture_output=True)
    assert made.returncode == 0, made.stderr.decode()[-2000:]
    demo = {c["client_id"]: c["client_secret"] for c in json.loads(made.stdout)["demo_clients"]}
    subprocess.run([*HOVIYAT, "ca", "init", "--json"], env=base, check=True, capture_output=True)
    addresses = [f"127.0.0.{index + 2}" for index in range(count)]
    hosts: list[Host] = []
    nginx: subprocess.Popen[bytes] | None = None
    try:
        for address in addresses:
            data = folder / f"host-{address}"
            shutil.copytree(folder / "data", data)
            env = {**base, "HOVIYAT_DATA_DIR": str(data)}
            port = free_port(address)
            log = folder / f"{address}.log"
            process = subprocess.Popen(
                [*HOVIYAT, "serve", "--host", address, "--port", str(port), "--workers", "1"],
                env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
            )  # fmt: skip
            hosts.append(Host(address, port, process, log))
        for host in hosts:
            _wait(host.url, host.process, host.log)
        nginx_folder = folder / "nginx"
        nginx_folder.mkdir()
        site = _site(nginx_folder, [(h.address, h.port) for h in hosts], https_port)
        site_tls(nginx_folder)
        config = main_config(nginx_folder, site, worker_connections=512)
        error_log = nginx_folder / "error.log"
        nginx = subprocess.Popen(
            [NGINX, "-p", str(nginx_folder), "-e", str(error_log), "-c", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(issuer, nginx, error_log)
        yield Cluster(issuer, hosts, base, database_url, folder, demo)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        for host in hosts:
            host.stop()
