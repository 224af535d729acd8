"""``hoviyat serve --workers 2`` in a subprocess for the fault tests: its workers, their
sockets and memory, and a verification load whose acknowledged answers are kept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from verifiers.registry.synthetic import SyntheticRegistry

HOVIYAT = [sys.executable, "-m", "idp.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def hoviyat_env(data_dir: Path, database_url: str, registry: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOVIYAT_")}
    env.update(
        HOVIYAT_DATA_DIR=str(data_dir),
        HOVIYAT_DATABASE_URL=database_url,
        HOVIYAT_REGISTRY_PATH=str(registry),
        HOVIYAT_LOG_LEVEL="WARNING",
        **extra,
    )
    return env


def init(env: dict[str, str]) -> dict[str, str]:
    """``hoviyat init --json``; the demo clients' secrets by client id."""
    done = subprocess.run([*HOVIYAT, "init", "--json"], env=env, capture_output=True, check=True)
    report = json.loads(done.stdout)
    return {c["client_id"]: c["client_secret"] for c in report.get("demo_clients", [])}


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in found.stdout.split()]


LISTENING, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def tcp_sockets(pid: int, port: int, state: str) -> int:
    """TCP sockets of ``pid`` on local ``port`` in ``state`` (0 once the process is gone)."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    count = 0
    for line in table:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state and fields[9] in inodes:
            count += 1
    return count


def listening(pid: int, port: int) -> bool:
    """Whether ``pid`` holds a listening TCP socket on ``port``."""
    return tcp_sockets(pid, port, LISTENING) > 0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """The largest summed RSS of ``pids`` seen while the block runs (sampled every 5 ms)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, sum(rss_mb(pid) for pid in self.pids))
            time.sleep(0.005)


@dataclass
class Served:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    def workers(self) -> list[int]:
        """The worker processes (not multiprocessing's resource tracker)."""
        return [pid for pid in children(self.process.pid) if b"spawn_main" in _cmdline(pid)]

    def ready_workers(
        self, count: int = 2, timeout: float = 60, without: int | None = None
    ) -> list[int]:
        """Wait until ``count`` workers listen (``without`` not among them); their pids."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"hoviyat serve exited: {self.stderr()}"
            ready = [pid for pid in self.workers() if pid != without and listening(pid, self.port)]
            if len(ready) >= count:
                return ready
            assert time.monotonic() < deadline, f"{count} listening workers never appeared"
            time.sleep(0.1)

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")


@contextmanager
def serve(env: dict[str, str], workers: int = 2) -> Iterator[Served]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*HOVIYAT, "serve", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env={**env, "HOVIYAT_ISSUER": url}, stderr=subprocess.PIPE)
    try:
        yield Served(url, port, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in children(process.pid):
            os.kill(pid, signal.SIGKILL)


def wait_ready(
    url: str, timeout: float = 60, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until ``url``/readyz answers 200; fails at once if ``process`` (the server) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process is None or process.poll() is None, "hoviyat serve exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("hoviyat serve did not become ready")


def bank_token(url: str, secret: str) -> str:
    answer = httpx.post(
        f"{url}/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-bank", secret),
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def person_bodies(registry: Path, count: int) -> list[dict[str, str]]:
    source = SyntheticRegistry(registry)
    try:
        return [
            {
                "national_code": person.national_code,
                "birth_date": person.birth_date.isoformat(),
                "first_name": person.first_name,
                "last_name": person.last_name,
            }
            for person, _ in source.iter_persons(count)
        ]
    finally:
        source.close()


@dataclass
class VerificationLoad:
    """Threads posting verifications, each on a new connection (so the kernel spreads
    them over both workers); what each answer was, by kind, with the time it came."""

    url: str
    token: str
    bodies: list[dict[str, str]]
    threads: int = 6
    acknowledged: list[tuple[float, str]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    longest_wait: float = 0.0
    refusals_without_retry_after: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _running: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def of_bank(
        cls, served: Served, env: dict[str, str], registry: Path, persons: int
    ) -> VerificationLoad:
        """The demo bank verifying ``persons`` people of ``registry`` in turn (not started)."""
        token = bank_token(served.url, env["HOVIYAT_DEMO_SECRET_BANK"])
        return cls(served.url, token, person_bodies(registry, persons))

    def start(self) -> None:
        for index in range(self.threads):
            thread = threading.Thread(target=self._post, args=(index,), daemon=True)
            thread.start()
            self._running.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._running:
            thread.join(timeout=30)

    def _post(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Connection": "close"}
        position = index
        while not self._stop.is_set():
            body = self.bodies[position % len(self.bodies)]
            position += self.threads
            started = time.monotonic()
            try:
                answer = httpx.post(
                    f"{self.url}/v1/persons/verify", json=body, headers=headers, timeout=30
                )
            except httpx.TransportError as error:
                self._fail(type(error).__name__)
                time.sleep(0.02)
                continue
            finally:
                self.longest_wait = max(self.longest_wait, time.monotonic() - started)
            if answer.status_code == 503 and "retry-after" not in answer.headers:
                self.refusals_without_retry_after += 1
            if answer.status_code == 200:
                self.acknowledged.append((time.monotonic(), answer.json()["tracking_code"]))
            else:
                self._fail(str(answer.status_code))
                time.sleep(0.02)  # a refused client backs off a little

    def _fail(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1

    def answered_between(self, start: float, end: float) -> int:
        return sum(1 for when, _ in list(self.acknowledged) if start <= when <= end)
