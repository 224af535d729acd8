"""Fixed-window rate limits shared by every worker and host through the database.

Each process counts locally and folds its counts into the shared
``rate_counters`` rows with every group commit (an atomic upsert that returns
the new totals, so each process also learns what the others counted). A check
is then a dictionary lookup on the request path. The cost is a bounded
overshoot: other processes' requests since their last commit are not yet
seen. A limit here slows enumeration; it is not a quota to the request.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from idp.storage.rate_counters import add_counts, delete_expired

PRUNE_CHUNK = 500


@dataclass(frozen=True)
class Limit:
    bucket: str
    limit: int


class RateLimiter:
    def __init__(self, window_seconds: int) -> None:
        self.window_seconds = window_seconds
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int], int] = {}
        self._pending: Counter[tuple[str, int]] = Counter()
        self._pruned_window = 0
        self._known_window = 0

    def window(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return int(now // self.window_seconds) * self.window_seconds

    def retry_after(self, limits: Sequence[Limit]) -> int | None:
        """Seconds until the window resets if any limit is used up, else None."""
        window = self.window()
        with self._lock:
            for item in limits:
                key = (item.bucket, window)
                if self._known.get(key, 0) + self._pending[key] >= item.limit:
                    return max(1, window + self.window_seconds - int(time.time()))
        return None

    def count(self, limits: Sequence[Limit]) -> None:
        window = self.window()
        with self._lock:
            for item in limits:
                self._pending[(item.bucket, window)] += 1

    def flush(self, connection: Connection) -> None:
        """Fold this process's counts into the shared rows (inside a commit batch)."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        totals = add_counts(connection, pending)
        current = self.window()
        with self._lock:
            if self._known_window != current:
                self._known = {k: v for k, v in self._known.items() if k[1] >= current}
                self._known_window = current
            self._known.update({k: v for k, v in totals.items() if k[1] >= current})
        if self._pruned_window != current:
            self._prune(connection, current)

    def _prune(self, connection: Connection, current: int) -> None:
        """Delete one chunk of expired rows; later batches take the rest.

        A window at 2,000 verifications/s leaves some 120,000 subject rows;
        deleting them at once held the write lock for 150 ms every minute.
        """
        deleted = delete_expired(connection, current - self.window_seconds, PRUNE_CHUNK)
        if deleted < PRUNE_CHUNK:
            self._pruned_window = current
