"""A sector identifier document served over http on loopback (OIDC Core §8.1), for tests.

Hoviyat fetches such documents only over https unless
``HOVIYAT_SECTOR_IDENTIFIER_ALLOW_HTTP_LOOPBACK`` is set, as these tests do.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SectorServer:
    """Serves ``body`` (bytes) at every path; ``delay`` seconds before answering."""

    def __init__(self, body: bytes, status: int = 200, delay: float = 0.0) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                time.sleep(outer.delay)
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *_args: Any) -> None:
                return

        self.body, self.status, self.delay = body, status, delay
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sector.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SectorServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
