"""Registries reached over HTTP (``HOVIYAT_REGISTRY_ADAPTER=http``), per the contract in
:mod:`verifiers.registry.server`.

Every way a call can fail (refused connection, timeout, 5xx, an answer that
breaks the contract, an open circuit) raises :class:`RegistryUnavailable`;
only a contract 404 means "not found". An outage can therefore never turn
into a "no match" for a citizen.

- One pooled ``httpx.Client`` per adapter (keep-alive connections reused
  across threads), with connect/read timeouts of ``timeout`` seconds.
- Identifiers go in POST bodies, never in URLs (see the contract): a URL is
  what access logs, proxies and httpx's own request log record.
- Retries: every call is a lookup that changes nothing, so repeating it is
  safe although it is a POST. Up to ``retries`` more attempts,
  with full-jitter exponential backoff (``backoff_seconds`` × 2ⁿ), after a
  connection failure (refused, connect timeout, a pooled connection the
  server closed) or a 5xx. Read timeouts are not retried: the registry is
  slow, and asking again would only multiply the caller's wait.
- A :class:`~verifiers.registry.circuit_breaker.CircuitBreaker` per registry:
  after ``failure_threshold`` consecutive failed calls it refuses calls for
  ``reset_seconds``, then lets one trial through.

Options: ``url`` (required), ``civil_url`` / ``mobile_url`` / ``deeds_url``
(override per registry), ``timeout`` (2.0), ``retries`` (2),
``backoff_seconds`` (0.05), ``failure_threshold`` (5), ``reset_seconds`` (10).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from verifiers.registry.base import (
    LegalEntity,
    Person,
    Registries,
    RegistryUnavailable,
    register_adapter,
)
from verifiers.registry.circuit_breaker import CircuitBreaker, CircuitOpen
from verifiers.registry.wire import entity_from_json, person_from_json

# Failures before any byte of the request reached the registry, or a
# keep-alive connection the server had already closed: safe and useful to retry.
R = TypeVar("R")
_RETRYABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
_MAX_BACKOFF_SECONDS = 1.0


class _Failure(Exception):
    def __init__(self, reason: str, retryable: bool, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() else None


class RegistryEndpoint:
    """One registry behind one base URL: retries, circuit breaker, error mapping."""

    def __init__(
        self,
        name: str,
        client: httpx.Client,
        base_url: str,
        *,
        retries: int,
        backoff_seconds: float,
        breaker: CircuitBreaker,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.breaker = breaker
        self._client = client
        self._retries = retries
        self._backoff = backoff_seconds

    def lookup(self, path: str, query: Mapping[str, str]) -> dict[str, Any] | None:
        """The JSON body of a 200, ``None`` for a contract 404; anything else raises."""
        try:
            self.breaker.before_call()
        except CircuitOpen as exc:
            raise RegistryUnavailable(
                self.name, "circuit open after repeated failures", math.ceil(exc.retry_after)
            ) from None
        try:
            body = self._with_retries(path, query)
        except _Failure as failure:
            self.breaker.record_failure()
            retry_after = failure.retry_after or self.breaker.retry_after_seconds()
            raise RegistryUnavailable(self.name, failure.reason, retry_after) from None
        except BaseException:
            # Whatever else escapes (an interrupt, a bug) must not leave a
            # half-open breaker waiting forever for its trial call to report.
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return body

    def _with_retries(self, path: str, query: Mapping[str, str]) -> dict[str, Any] | None:
        attempt = 0
        while True:
            try:
                return self._attempt(path, query)
            except _Failure as failure:
                if not failure.retryable or attempt >= self._retries:
                    raise
            attempt += 1
            ceiling = min(_MAX_BACKOFF_SECONDS, self._backoff * 2 ** (attempt - 1))
            time.sleep(random.uniform(0, ceiling))  # jitter, not a secret

    def _attempt(self, path: str, query: Mapping[str, str]) -> dict[str, Any] | None:
        try:
            response = self._client.post(self.base_url + path, json=dict(query))
        except _RETRYABLE_ERRORS as exc:
            raise _Failure(f"connection failed: {type(exc).__name__}", retryable=True) from None
        except httpx.TimeoutException as exc:
            raise _Failure(f"timed out: {type(exc).__name__}", retryable=False) from None
        except httpx.HTTPError as exc:
            raise _Failure(f"transport error: {type(exc).__name__}", retryable=False) from None
        if response.status_code >= 500:
            raise _Failure(
                f"HTTP {response.status_code}", retryable=True, retry_after=_retry_after(response)
            )
        try:
            body = response.json()
        except ValueError:
            raise _Failure(
                f"HTTP {response.status_code} without a JSON body", retryable=False
            ) from None
        if (
            response.status_code == 404
            and isinstance(body, dict)
            and body.get("error") == "not_found"
        ):
            return None
        if response.status_code != 200 or not isinstance(body, dict):
            raise _Failure(f"unexpected answer: HTTP {response.status_code}", retryable=False)
        return body

    def ping(self) -> None:
        """Readiness: ``/healthz`` once, no retries, not counted by the breaker."""
        try:
            response = self._client.get(self.base_url + "/healthz")
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(
                self.name, f"health check failed: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise RegistryUnavailable(
                self.name, f"health check answered HTTP {response.status_code}"
            )


def _record(
    endpoint: RegistryEndpoint,
    path: str,
    query: dict[str, str],
    parse: Callable[[dict[str, Any]], R],
    registry: str,
) -> R | None:
    """One record, or None if the registry has none; a malformed one is an outage."""
    body = endpoint.lookup(path, query)
    if body is None:
        return None
    try:
        return parse(body)
    except ValueError as exc:
        raise RegistryUnavailable(registry, str(exc)) from None


class HttpCivilRegistry:
    def __init__(self, endpoint: RegistryEndpoint) -> None:
        self.endpoint = endpoint

    def person(self, national_code: str) -> Person | None:
        query = {"national_code": national_code}
        return _record(self.endpoint, "/civil/persons/lookup", query, person_from_json, "civil")


class HttpMobileRegistry:
    def __init__(self, endpoint: RegistryEndpoint) -> None:
        self.endpoint = endpoint

    def owns(self, national_code: str, mobile: str) -> bool:
        body = self.endpoint.lookup(
            "/mobile/owners/lookup", {"mobile": mobile, "national_code": national_code}
        )
        owns = body.get("owns") if body is not None else None
        if not isinstance(owns, bool):
            # No record or no clear yes/no is a broken contract, never a "no".
            raise RegistryUnavailable("mobile", "answer without a boolean 'owns'")
        return owns


class HttpDeedsRegistry:
    def __init__(self, endpoint: RegistryEndpoint) -> None:
        self.endpoint = endpoint

    def entity(self, national_id: str) -> LegalEntity | None:
        query = {"national_id": national_id}
        return _record(self.endpoint, "/deeds/entities/lookup", query, entity_from_json, "deeds")

    def entities_represented_by(self, national_code: str) -> list[str]:
        body = self.endpoint.lookup(
            "/deeds/representatives/lookup", {"national_code": national_code}
        )
        national_ids = body.get("national_ids") if body is not None else None
        if not isinstance(national_ids, list) or not all(isinstance(i, str) for i in national_ids):
            raise RegistryUnavailable("deeds", "answer without a 'national_ids' list")
        return national_ids


def open_http_registries(options: Mapping[str, Any]) -> Registries:
    """Build the three HTTP registries from adapter ``options`` (see the module docstring)."""
    url = str(options["url"])
    timeout = float(options.get("timeout", 2.0))
    retries = int(options.get("retries", 2))
    if retries < 0:
        raise ValueError("retries must be 0 or more")
    client = httpx.Client(
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        headers={"Accept": "application/json"},
    )

    def endpoint(name: str) -> RegistryEndpoint:
        return RegistryEndpoint(
            name,
            client,
            str(options.get(f"{name}_url") or url),
            retries=retries,
            backoff_seconds=float(options.get("backoff_seconds", 0.05)),
            breaker=CircuitBreaker(
                failure_threshold=int(options.get("failure_threshold", 5)),
                reset_seconds=float(options.get("reset_seconds", 10.0)),
            ),
        )

    civil, mobile, deeds = endpoint("civil"), endpoint("mobile"), endpoint("deeds")

    def ping() -> None:
        for item in (civil, mobile, deeds):
            item.ping()

    return Registries(
        civil=HttpCivilRegistry(civil),
        mobile=HttpMobileRegistry(mobile),
        deeds=HttpDeedsRegistry(deeds),
        ping=ping,
        close=client.close,
    )


register_adapter("http", open_http_registries)
