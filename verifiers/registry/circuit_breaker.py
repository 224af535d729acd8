"""A circuit breaker: stop calling a registry that keeps failing, try again after a cool-down.

Closed: calls go through; ``failure_threshold`` consecutive failures open it.
Open: calls are refused at once (the caller answers 503 with ``Retry-After``
instead of making every request wait for a timeout). After ``reset_seconds``
it is half-open: one trial call goes through; success closes it, failure
opens it for another cool-down. State is per process, which is the point:
each worker protects its own threads from waiting on a dead registry.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitOpen(Exception):
    """The breaker refused the call; ``retry_after`` seconds until it will try again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open, retry in {retry_after:.1f}s")
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_seconds <= 0:
            raise ValueError("reset_seconds must be positive")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> State:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_seconds:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Raise :class:`CircuitOpen` unless a call may go ahead now."""
        with self._lock:
            state = self._state_locked()
            if state == "closed":
                return
            if state == "half_open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return
            assert self._opened_at is not None
            remaining = self.reset_seconds - (self._clock() - self._opened_at)
            # While a trial is in flight, others wait at least a second.
            raise CircuitOpen(max(remaining, 1.0))

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_in_flight = False

    def retry_after_seconds(self) -> int:
        """Whole seconds a client should wait (``Retry-After``), at least 1."""
        with self._lock:
            if self._opened_at is None:
                return 1
            remaining = self.reset_seconds - (self._clock() - self._opened_at)
            return max(1, math.ceil(remaining))
