"""Worker processes behind one port, with connections balanced by the kernel.

uvicorn's ``--workers`` shares one listening socket among its processes, and
each worker's event loop accepts every connection waiting when it wakes. Keep-
alive clients (agency back offices, a reverse proxy's upstream pool) therefore
pile onto whichever worker woke first: under a two-worker benchmark one
worker served four requests in five while the other idled. Here each worker
binds a socket of its own with ``SO_REUSEPORT`` and the kernel spreads new
connections across them by a hash of their addresses, as nginx's
``reuseport`` does. Where the option is missing, uvicorn's own supervisor runs.

A worker that dies is started again, after a pause that doubles with each
death before it became ready (0.5 s up to 10 s), while the others keep
serving. Only a worker that fails to become ready ``MAX_START_FAILURES``
times in a row (a broken configuration, a database that refuses every
connection at start-up) makes the supervisor give up: it stops the others
and :func:`serve` raises :class:`WorkersFailed`.

SIGTERM or SIGINT stop the service within ``SHUTDOWN_SECONDS``: each worker
stops accepting, finishes the requests in flight for up to
``GRACE_SECONDS``, then cancels what is left (an unfinished request's
transaction is rolled back, never half committed); a worker still alive at
the bound is killed.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

import uvicorn

from idp.http.connection_guard import ConnectionLimits, bound_to
from idp.http.write_coalescing import CoalescingHttpToolsProtocol

log = logging.getLogger("hoviyat.serve")

APP = "idp.asgi:app"
# Deaths before readiness, in a row, after which a slot is given up (and the service with it).
MAX_START_FAILURES = 5
_FIRST_BACKOFF_SECONDS = 0.5
_MAX_BACKOFF_SECONDS = 10.0
# uvicorn's wait for requests in flight after SIGTERM; then the rest are cancelled.
GRACE_SECONDS = 10.0
# The supervisor's bound on a stop: past it a worker is killed.
SHUTDOWN_SECONDS = 15.0


class WorkersFailed(RuntimeError):
    """A worker slot failed to start too many times in a row."""


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int
    # Read once by the command; each worker's connections use these, not the environment.
    limits: ConnectionLimits
    trusted_proxies: tuple[str, ...] = ()
    backlog: int = 2048

    def uvicorn_options(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            # The application applies HOVIYAT_TRUSTED_PROXIES itself, on the real
            # peer uvicorn's rewrite would hide (idp.http.trusted_proxy).
            "proxy_headers": False,
            "access_log": False,
            "server_header": False,
            "log_config": None,
            "backlog": self.backlog,
            "http": bound_to(CoalescingHttpToolsProtocol, self.limits),
            "timeout_graceful_shutdown": GRACE_SECONDS,
        }


def serve(options: ServeOptions) -> None:
    """Serve until SIGINT or SIGTERM.

    Raises OSError if the address cannot be bound and :class:`WorkersFailed`
    when a worker cannot start.
    """
    if options.workers == 1 or not hasattr(socket, "SO_REUSEPORT"):
        # One process, or a system without the option: uvicorn's own supervisor.
        uvicorn.run(APP, workers=options.workers, **options.uvicorn_options())
        return
    # Bound without SO_REUSEPORT, never listening: fails if anything holds
    # the port, another Hoviyat's reuse-port group included (which would
    # otherwise silently share the traffic), and turns port 0 into the port
    # every worker then binds.
    with _socket(options.host, options.port, reuse_port=False) as probe:
        port = probe.getsockname()[1]
    _Supervisor(replace(options, port=port)).run()


def _socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling the supervisor once it accepts connections."""

    def __init__(self, config: uvicorn.Config, ready: Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()


def _worker(options: ServeOptions, ready: Event) -> None:
    # Bound here, listened on by uvicorn once the app has started: until then the
    # kernel hands new connections to the workers already answering, instead of
    # queueing them behind a (re)starting worker's imports.
    sock = _socket(options.host, options.port)
    _Server(uvicorn.Config(APP, **options.uvicorn_options()), ready).run(sockets=[sock])


@dataclass
class _Slot:
    process: BaseProcess | None = None
    ready: Event | None = None
    failures: int = 0  # deaths before readiness, in a row
    restart_at: float = 0.0


class _Supervisor:
    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.context = multiprocessing.get_context("spawn")
        self.slots = [_Slot() for _ in range(options.workers)]
        self.stopping = False

    def run(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._stop)
        log.info(
            "serving on %s:%d with %d workers (SO_REUSEPORT)",
            self.options.host,
            self.options.port,
            self.options.workers,
        )
        for slot in self.slots:
            self._start(slot)
        try:
            while not self.stopping:
                wait(self._sentinels(), timeout=self._wait_seconds())
                self._tend()
        finally:
            self._shutdown()

    def _sentinels(self) -> list[Any]:
        return [slot.process.sentinel for slot in self.slots if slot.process is not None]

    def _wait_seconds(self) -> float:
        pending = [slot.restart_at for slot in self.slots if slot.process is None]
        if not pending:
            return 0.5
        return max(0.0, min(0.5, min(pending) - time.monotonic()))

    def _start(self, slot: _Slot) -> None:
        ready = self.context.Event()
        process = self.context.Process(target=_worker, args=(self.options, ready), daemon=False)
        process.start()
        slot.process, slot.ready = process, ready

    def _tend(self) -> None:
        """Notice dead workers and start their replacements when their pause is over."""
        now = time.monotonic()
        for slot in self.slots:
            if self.stopping:
                return
            process = slot.process
            if process is not None and not process.is_alive():
                self._buried(slot, process, now)
            if slot.process is None and now >= slot.restart_at:
                self._start(slot)

    def _buried(self, slot: _Slot, process: BaseProcess, now: float) -> None:
        process.join()
        was_ready = slot.ready is not None and slot.ready.is_set()
        slot.process, slot.ready = None, None
        if was_ready:
            slot.failures = 0
            slot.restart_at = now
            log.error("worker %d died (code %s); starting another", process.pid, process.exitcode)
            return
        slot.failures += 1
        if slot.failures >= MAX_START_FAILURES:
            raise WorkersFailed(
                f"a worker failed to start {slot.failures} times in a row "
                f"(last exit code {process.exitcode}); giving up"
            )
        pause = min(_FIRST_BACKOFF_SECONDS * 2 ** (slot.failures - 1), _MAX_BACKOFF_SECONDS)
        slot.restart_at = now + pause
        log.error(
            "worker %d exited before it was ready (code %s, %d in a row); "
            "starting another in %.1f s",
            process.pid,
            process.exitcode,
            slot.failures,
            pause,
        )

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _shutdown(self) -> None:
        processes = [slot.process for slot in self.slots if slot.process is not None]
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker %d still running at the shutdown bound; killed", process.pid)
                process.kill()
                process.join()
