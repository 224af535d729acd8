"""The HTTP adapter against the real registry server on loopback (uvicorn in a thread).

An outage must surface as RegistryUnavailable, never as None (not found) or
False (not the owner): either would tell a citizen "no match" for a registry
that simply did not answer.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from verifiers.registry import Registries, RegistryUnavailable, open_registries
from verifiers.registry.http_adapter import (
    HttpCivilRegistry,
    HttpDeedsRegistry,
    HttpMobileRegistry,
)
from verifiers.registry.synthetic import SyntheticRegistry, export

RETRIES, FAILURE_THRESHOLD, RESET_SECONDS = 2, 3, 0.3
OPTIONS: dict[str, Any] = {
    "timeout": 0.4,
    "retries": RETRIES,
    "backoff_seconds": 0.01,
    "failure_threshold": FAILURE_THRESHOLD,
    "reset_seconds": RESET_SECONDS,
}


@pytest.fixture(scope="module")
def people(synthetic_registry_path: Path) -> list[dict[str, Any]]:
    return list(export(synthetic_registry_path, "persons", 50))


@pytest.fixture(scope="module")
def companies(synthetic_registry_path: Path) -> list[dict[str, Any]]:
    return list(export(synthetic_registry_path, "entities", 10))


@pytest.fixture
def adapter(registry_server: Any) -> Iterator[Registries]:
    registries = open_registries("http", {"url": registry_server.url, **OPTIONS})
    yield registries
    registries.close()


def _requests(server: Any) -> int:
    return int(server.state()["requests"])


def _breaker_state(registries: Registries) -> str:
    civil = registries.civil
    assert isinstance(civil, HttpCivilRegistry)
    return civil.endpoint.breaker.state


def _all_calls(
    registries: Registries, person: dict[str, Any], company: dict[str, Any]
) -> list[Callable[[], object]]:
    return [
        lambda: registries.civil.person(person["national_code"]),
        lambda: registries.mobile.owns(person["national_code"], "09121234567"),
        lambda: registries.deeds.entity(company["national_id"]),
    ]


def test_answers_are_those_of_the_embedded_registry(
    adapter: Registries, synthetic_registry_path: Path, people: list[dict], companies: list[dict]
) -> None:
    embedded = SyntheticRegistry(synthetic_registry_path)
    for person in people[:10]:
        assert adapter.civil.person(person["national_code"]) == embedded.person(
            person["national_code"]
        )
    for company in companies:
        assert adapter.deeds.entity(company["national_id"]) == embedded.entity(
            company["national_id"]
        )
    owner = next(p for p in people if p["mobiles"])
    assert adapter.mobile.owns(owner["national_code"], owner["mobiles"][0]) is True
    assert adapter.mobile.owns(people[0]["national_code"], "09000000000") is False
    embedded.close()


def test_not_found_is_none_and_not_retried(registry_server: Any, adapter: Registries) -> None:
    before = _requests(registry_server)
    assert adapter.civil.person("0499370899") is None
    assert adapter.deeds.entity("10380284790") is None
    assert _requests(registry_server) - before == 2


def test_ping(registry_server: Any, adapter: Registries) -> None:
    adapter.ping()
    registry_server.control(error_rate=1)
    with pytest.raises(RegistryUnavailable):
        adapter.ping()


def test_latency_within_timeout_still_answers(
    registry_server: Any, adapter: Registries, people: list[dict]
) -> None:
    registry_server.control(latency_ms=50)
    assert adapter.civil.person(people[0]["national_code"]) is not None


def test_latency_beyond_timeout_is_unavailable_without_retry(
    registry_server: Any, adapter: Registries, people: list[dict], companies: list[dict]
) -> None:
    registry_server.control(latency_ms=1500)
    for call in _all_calls(adapter, people[0], companies[0]):
        before = _requests(registry_server)
        with pytest.raises(RegistryUnavailable) as caught:
            call()
        assert "timed out" in caught.value.reason
        assert caught.value.retry_after >= 1
        # A slow registry is not asked again: that would triple the caller's wait.
        assert _requests(registry_server) - before == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_unavailable(
    registry_server: Any,
    adapter: Registries,
    people: list[dict],
    companies: list[dict],
    status: int,
) -> None:
    registry_server.control(error_rate=1, error_status=status)
    for call in _all_calls(adapter, people[0], companies[0]):
        before = _requests(registry_server)
        with pytest.raises(RegistryUnavailable) as caught:
            call()
        assert caught.value.reason == f"HTTP {status}"
        assert _requests(registry_server) - before == 1 + RETRIES


def test_503_retry_after_is_passed_on(
    registry_server: Any, adapter: Registries, people: list[dict]
) -> None:
    registry_server.control(error_rate=1, error_status=503)
    with pytest.raises(RegistryUnavailable) as caught:
        adapter.civil.person(people[0]["national_code"])
    assert caught.value.registry == "civil"
    assert caught.value.retry_after == 1


def test_flaky_registry_never_yields_a_wrong_answer(
    registry_server: Any, adapter: Registries, people: list[dict]
) -> None:
    """Half the requests fail: each call either answers correctly or raises."""
    registry_server.control(error_rate=0.5)
    masked_by_retry = 0
    for person in people:
        before = _requests(registry_server)
        try:
            found = adapter.civil.person(person["national_code"])
        except RegistryUnavailable:
            _reset_breakers(adapter)
            continue
        finally:
            attempts = _requests(registry_server) - before
        assert found is not None and found.national_code == person["national_code"]
        masked_by_retry += attempts > 1
        _reset_breakers(adapter)  # a streak of failures must not trip the breaker here
    assert masked_by_retry > 0


def _reset_breakers(registries: Registries) -> None:
    for registry in (registries.civil, registries.mobile, registries.deeds):
        assert isinstance(registry, HttpCivilRegistry | HttpMobileRegistry | HttpDeedsRegistry)
        registry.endpoint.breaker.record_success()


def _trip_the_breaker(registry_server: Any, adapter: Registries, code: str) -> None:
    """The registry fails every call until the breaker has seen its threshold of failures."""
    registry_server.control(error_rate=1)
    for _ in range(FAILURE_THRESHOLD):
        with pytest.raises(RegistryUnavailable):
            adapter.civil.person(code)


def test_circuit_opens_then_closes_after_cool_down(
    registry_server: Any, adapter: Registries, people: list[dict]
) -> None:
    code = people[0]["national_code"]
    _trip_the_breaker(registry_server, adapter, code)
    assert _breaker_state(adapter) == "open"
    before = _requests(registry_server)
    with pytest.raises(RegistryUnavailable) as caught:
        adapter.civil.person(code)
    assert "circuit open" in caught.value.reason
    assert caught.value.retry_after >= 1
    assert _requests(registry_server) == before  # refused without calling the registry

    registry_server.heal()
    time.sleep(RESET_SECONDS + 0.05)
    assert _breaker_state(adapter) == "half_open"
    assert adapter.civil.person(code) is not None
    assert _breaker_state(adapter) == "closed"


def test_failed_trial_reopens_the_circuit(
    registry_server: Any, adapter: Registries, people: list[dict]
) -> None:
    code = people[0]["national_code"]
    _trip_the_breaker(registry_server, adapter, code)
    time.sleep(RESET_SECONDS + 0.05)
    with pytest.raises(RegistryUnavailable) as trial:
        adapter.civil.person(code)
    assert trial.value.reason == "HTTP 503"
    assert _breaker_state(adapter) == "open"
    before = _requests(registry_server)
    with pytest.raises(RegistryUnavailable):
        adapter.civil.person(code)
    assert _requests(registry_server) == before


def test_circuits_are_per_registry(
    registry_server: Any, adapter: Registries, people: list[dict], companies: list[dict]
) -> None:
    registry_server.control(error_rate=1)
    for _ in range(FAILURE_THRESHOLD):
        with pytest.raises(RegistryUnavailable):
            adapter.civil.person(people[0]["national_code"])
    registry_server.heal()
    assert adapter.deeds.entity(companies[0]["national_id"]) is not None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_registry_down_is_unavailable_never_not_found(
    people: list[dict], companies: list[dict]
) -> None:
    registries = open_registries("http", {"url": f"http://127.0.0.1:{_closed_port()}", **OPTIONS})
    for call in _all_calls(registries, people[0], companies[0]):
        with pytest.raises(RegistryUnavailable) as caught:
            call()
        assert caught.value.reason.startswith("connection failed")
    with pytest.raises(RegistryUnavailable):
        registries.ping()
    registries.close()


def test_a_404_outside_the_contract_is_not_not_found(
    registry_server: Any, people: list[dict], companies: list[dict]
) -> None:
    # A wrong base URL answers 404 for everything; that must not read as "no such person".
    registries = open_registries("http", {"url": registry_server.url + "/wrong", **OPTIONS})
    for call in _all_calls(registries, people[0], companies[0]):
        with pytest.raises(RegistryUnavailable):
            call()
    registries.close()


def test_per_registry_urls(registry_server: Any, people: list[dict]) -> None:
    registries = open_registries(
        "http",
        {"url": f"http://127.0.0.1:{_closed_port()}", "civil_url": registry_server.url, **OPTIONS},
    )
    assert registries.civil.person(people[0]["national_code"]) is not None
    with pytest.raises(RegistryUnavailable):
        registries.mobile.owns(people[0]["national_code"], "09121234567")
    registries.close()


@pytest.mark.parametrize(
    "changes",
    [{"error_rate": 2}, {"latency_ms": -1}, {"error_status": 404}, {"requests": 0}, {"x": 1}],
)
def test_control_rejects_bad_settings(registry_server: Any, changes: dict) -> None:
    response = registry_server.client.post(f"{registry_server.url}/_control", json=changes)
    assert response.status_code == 400
    assert registry_server.state()["error_rate"] == 0


def test_server_contract_shapes(registry_server: Any, people: list[dict]) -> None:
    url = registry_server.url
    missing = registry_server.client.post(
        f"{url}/civil/persons/lookup", json={"national_code": "0499370899"}
    )
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})
    no_code = registry_server.client.post(
        f"{url}/mobile/owners/lookup", json={"mobile": "09121234567"}
    )
    assert no_code.status_code == 400
    not_json = registry_server.client.post(f"{url}/civil/persons/lookup", content=b"[")
    assert not_json.status_code == 400
    health = registry_server.client.get(f"{url}/healthz").json()
    assert health == {"status": "ok", "persons": 2000, "entities": 300}
    found = registry_server.client.post(
        f"{url}/civil/persons/lookup", json={"national_code": people[0]["national_code"]}
    ).json()
    assert found["birth_date"] == people[0]["birth_date"]


def test_attack_identifiers_in_registry_urls_no_lookup_path_carries_one(
    registry_server: Any, people: list[dict]
) -> None:
    """Request lines are logged by proxies and clients: the old GET paths are gone."""
    code = people[0]["national_code"]
    for path in (f"/civil/persons/{code}", f"/deeds/representatives/{code}/entities"):
        assert registry_server.client.get(registry_server.url + path).status_code in (404, 405)


def test_entities_a_person_represents_agree_with_the_embedded_registry(
    adapter: Registries, synthetic_registry_path: Path, companies: list[dict]
) -> None:
    embedded = SyntheticRegistry(synthetic_registry_path)
    representative = companies[0]["representatives"][0]["national_code"]
    listed = embedded.entities_represented_by(representative)
    assert companies[0]["national_id"] in listed
    assert adapter.deeds.entities_represented_by(representative) == listed
    assert adapter.deeds.entities_represented_by("0499370899") == []
    for national_id in listed:
        entity = embedded.entity(national_id)
        assert entity is not None
        assert representative in {r.national_code for r in entity.representatives}
    embedded.close()
