"""Hoviyat served by ``hoviyat serve --workers 2`` in a subprocess, on the test's database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from idp.settings import Settings


class TwoWorkers:
    def __init__(self, settings: Settings, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "HOVIYAT_DATA_DIR": str(settings.data_dir),
            "HOVIYAT_DATABASE_URL": settings.resolved_database_url,
            "HOVIYAT_REGISTRY_PATH": str(settings.resolved_registry_path),
            "HOVIYAT_ISSUER": settings.issuer,
            "HOVIYAT_LOG_LEVEL": "WARNING",
        }
        # The product's own command: two uvicorn workers, a socket each (idp.serving).
        self.command = [
            sys.executable, "-m", "idp.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "2",
        ]  # fmt: skip
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> TwoWorkers:
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/.well-known/openid-configuration").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"hoviyat serve did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
