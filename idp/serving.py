"""Worker processes behind one port, with connections balanced by the kernel.

uvicorn's ``--workers`` shares one listening socket among its processes, and
each worker's event loop accepts every connection waiting when it wakes. Keep-
alive clients (agency back offices, a reverse proxy's upstream pool) therefore
pile onto whichever worker woke first: under a two-worker benchmark one
worker served four requests in five while the other idled. Here each worker
binds a socket of its own with ``SO_REUSEPORT`` and the kernel spreads new
connections across them by a hash of their addresses, as nginx's
``reuseport`` does. Where the option is missing, uvicorn's own supervisor runs.
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
from types import FrameType
from typing import Any

import uvicorn

from idp.http.write_coalescing import CoalescingHttpToolsProtocol

log = logging.getLogger("hoviyat.serve")

APP = "idp.asgi:app"
# A worker that dies this soon after starting is failing to start, not crashing.
_STARTUP_SECONDS = 10.0


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int
    trusted_proxies: tuple[str, ...] = ()
    backlog: int = 2048

    def uvicorn_options(self) -> dict[str, Any]:
        trusted = ",".join(self.trusted_proxies)
        return {
            "host": self.host,
            "port": self.port,
            "proxy_headers": bool(trusted),
            "forwarded_allow_ips": trusted or None,
            "access_log": False,
            "server_header": False,
            "log_config": None,
            "backlog": self.backlog,
            "http": CoalescingHttpToolsProtocol,
        }


def serve(options: ServeOptions) -> None:
    """Serve until SIGINT or SIGTERM; raises OSError if the address cannot be bound."""
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


def _worker(options: ServeOptions) -> None:
    sock = _socket(options.host, options.port)
    sock.listen(options.backlog)
    uvicorn.Server(uvicorn.Config(APP, **options.uvicorn_options())).run(sockets=[sock])


class _Supervisor:
    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.context = multiprocessing.get_context("spawn")
        self.workers: dict[int, tuple[BaseProcess, float]] = {}
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
        for slot in range(self.options.workers):
            self._start(slot)
        try:
            while not self.stopping:
                wait([process.sentinel for process, _ in self.workers.values()], timeout=0.5)
                self._replace_dead()
        finally:
            self._shutdown()

    def _start(self, slot: int) -> None:
        process = self.context.Process(target=_worker, args=(self.options,), daemon=False)
        process.start()
        self.workers[slot] = (process, time.monotonic())

    def _replace_dead(self) -> None:
        for slot, (process, started) in list(self.workers.items()):
            if process.is_alive() or self.stopping:
                continue
            if time.monotonic() - started < _STARTUP_SECONDS:
                raise SystemExit(f"worker {process.pid} exited at start (code {process.exitcode})")
            log.error("worker %d died (code %s); starting another", process.pid, process.exitcode)
            self._start(slot)

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _shutdown(self) -> None:
        processes = [process for process, _ in self.workers.values()]
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + 30
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
