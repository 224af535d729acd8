"""The openid-client relying party of tests/oidc/node/fapi.mjs, driven from pytest.

One node process answers one JSON request per line with one JSON answer per
line, so a test module pays node's start and openid-client's import (about
0.4 s) once instead of on every step of every flow.
"""

from __future__ import annotations

import json
import queue
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "node"
ANSWER_SECONDS = 60


class NodeRp:
    """The node process: one JSON request per line in, one JSON answer per line out."""

    def __init__(self, node: str) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            [node, str(NODE_DIR / "fapi.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._answers: queue.Queue[str] = queue.Queue()
        # A reader thread, so a hung answer fails the test after a timeout instead of blocking.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._answers.put(line)
        self._answers.put("")  # node ended: the caller fails at once, with its stderr

    def call(self, op: str, rp: dict[str, Any], **args: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps({"op": op, "rp": rp, **args}) + "\n")
            self._process.stdin.flush()
            line = self._answers.get(timeout=ANSWER_SECONDS)
        except (BrokenPipeError, queue.Empty):
            line = ""  # node ended, or hangs
        if not line:
            self._stderr.seek(0)
            raise AssertionError(f"no answer to {op}: {self._stderr.read()[-2000:]}")
        answer: dict[str, Any] = json.loads(line)
        # What went over the wire for this request (fapi.mjs's wireLog).
        self.wire: list[dict[str, Any]] = answer["wire"]
        return answer

    def ok(self, op: str, rp: dict[str, Any], **args: Any) -> Any:
        answer = self.call(op, rp, **args)
        assert answer["ok"], answer["error"]
        return answer["result"]

    def error(self, op: str, rp: dict[str, Any], **args: Any) -> dict[str, Any]:
        answer = self.call(op, rp, **args)
        assert not answer["ok"], f"{op} succeeded: {answer['result']}"
        error: dict[str, Any] = answer["error"]
        return error

    def close(self) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.close()
            self._process.wait(timeout=10)
        except BrokenPipeError:
            pass  # node ended before: its stderr was reported by the call that found out
        finally:
            if self._process.poll() is None:
                self._process.kill()
            self._stderr.close()
