"""What bounds a validation as a whole: the per-process concurrency limit, the
deadline, the event loop staying free, and the contract's edges."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from responders import CHALLENGE_PATH
from validation_world import World, challenge, fails, loopback_world

from idp.acme.settings import AcmeSettings
from idp.acme.validation import ChallengeFailed, validate
from idp.acme.validation.dns01 import txt_value


@pytest.fixture
def world() -> Iterator[World]:
    # Its own servers each test: the responder's in-flight counts are the test's.
    with loopback_world("127.0.0.49", "127.0.0.50") as world:
        yield world


async def _until(condition: object, what: str) -> None:
    for _ in range(2000):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def _over_the_limit(world: World, limit: int) -> tuple[int, list[BaseException | None]]:
    """Start limit+1 validations against a server that holds every request;
    return (requests the server held while full, outcomes after release)."""
    settings = world.settings(validation_concurrency=limit)
    name = world.name()
    token, key_authorization = challenge()
    path = CHALLENGE_PATH + token
    world.web.hold(path, then=key_authorization.encode())
    tasks = [
        asyncio.create_task(validate("http-01", name, token, key_authorization, settings))
        for _ in range(limit + 1)
    ]
    await _until(lambda: world.web.in_flight()[0] >= limit, f"{limit} requests held")
    # Every chance for one more to slip through if the limit leaked.
    for _ in range(20):
        await asyncio.sleep(0.01)
    held_while_full = len([p for _, p in world.web.requests() if p == path])
    world.web.release(path)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    return held_while_full, outcomes


def test_attack_more_validations_than_the_limit_wait_their_turn(world: World) -> None:
    limit = 3
    held_while_full, outcomes = asyncio.run(_over_the_limit(world, limit))
    assert held_while_full == limit
    assert world.web.in_flight()[1] == limit  # the most at once, over the whole run
    assert outcomes == [None] * (limit + 1)  # the one that waited passed too


def test_the_limit_holds_on_each_new_event_loop(world: World) -> None:
    # asyncio.Semaphore binds to the loop that first waits on it: a limit kept
    # across loops would fail (or not limit) on the second one.
    for _ in range(2):
        held_while_full, outcomes = asyncio.run(_over_the_limit(world, 1))
        assert held_while_full == 1
        assert outcomes == [None, None]


def test_a_validation_waiting_on_a_slow_server_leaves_the_loop_free(world: World) -> None:
    async def scenario() -> None:
        settings = world.settings()
        slow_name = world.name("slow")
        slow_token, slow_key_authorization = challenge()
        path = CHALLENGE_PATH + slow_token
        world.web.hold(path, then=slow_key_authorization.encode())
        slow = asyncio.create_task(
            validate("http-01", slow_name, slow_token, slow_key_authorization, settings)
        )
        await _until(lambda: world.web.in_flight()[0] == 1, "the slow request held")
        # While it waits, another validation on the same loop runs to the end.
        name = world.name()
        token, key_authorization = challenge()
        world.dns.set(f"_acme-challenge.{name}", "TXT", txt_value(key_authorization))
        await validate("dns-01", name, token, key_authorization, settings)
        assert not slow.done()
        world.web.release(path)
        await slow

    asyncio.run(scenario())


def test_attack_every_method_ends_at_the_deadline(world: World) -> None:
    # Whatever the other side does, a validation ends: the silent DNS name is
    # the slowest thing a name can do to every method.
    name = world.name()
    world.dns.silence(name)
    world.dns.silence(f"_acme-challenge.{name}")
    token, key_authorization = challenge()
    settings = world.settings(validation_timeout_seconds=0.3)
    for kind in ("http-01", "dns-01", "tls-alpn-01"):
        assert fails(kind, name, token, key_authorization, settings).error in {"dns", "connection"}


def test_a_failed_validation_frees_its_place(world: World) -> None:
    settings = world.settings(validation_concurrency=1)
    token, key_authorization = challenge()
    for _ in range(3):
        fails("http-01", "absent.agency.example", token, key_authorization, settings)
    name = world.name()
    world.web.serve(token, key_authorization)
    asyncio.run(validate("http-01", name, token, key_authorization, settings))


@pytest.mark.parametrize("kind", ["http-02", "", "DNS-01", "tls-sni-01", "x" * 1000])
def test_attack_unknown_challenge_type(world: World, kind: str) -> None:
    token, key_authorization = challenge()
    failure = fails(kind, world.name(), token, key_authorization, world.settings())
    assert failure.error == "malformed"
    assert len(failure.detail) < 100


def test_challenge_failed_is_the_contract_type() -> None:
    from idp.acme.validation.failure import ChallengeFailed as Defined

    assert ChallengeFailed is Defined
    failure = ChallengeFailed("incorrectResponse", "why")
    assert (failure.error, failure.detail, str(failure)) == ("incorrectResponse", "why", "why")


@pytest.mark.parametrize(
    "values",
    [
        {"dns_resolver": "resolver.example:53"},
        {"dns_resolver": "127.0.0.1:0"},
        {"validation_refused_networks": ["not-a-network"]},
        {"validation_concurrency": 0},
        {"validation_timeout_seconds": 0},
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AcmeSettings(**values)  # type: ignore[arg-type]


def test_resolver_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOVIYAT_ACME_DNS_RESOLVER", " [::1]:5353 ")
    monkeypatch.setenv("HOVIYAT_ACME_VALIDATION_REFUSED_NETWORKS", '["10.1.2.3/8"]')
    settings = AcmeSettings()
    assert settings.dns_resolver == "[::1]:5353"
    assert settings.validation_refused_networks == ["10.0.0.0/8"]


def test_attack_a_full_validator_answers_instead_of_queueing_for_ever(world: World) -> None:
    # Slots held by slow servers (an attacker's): a validation that cannot get
    # a place within the deadline fails as the server's own trouble, and the
    # held one still finishes once its server answers.
    async def scenario() -> tuple[ChallengeFailed, bool]:
        patient = world.settings(validation_concurrency=1, validation_timeout_seconds=30)
        hurried = world.settings(validation_concurrency=1, validation_timeout_seconds=0.3)
        slow_name = world.name("slow")
        slow_token, slow_key_authorization = challenge()
        path = CHALLENGE_PATH + slow_token
        world.web.hold(path, then=slow_key_authorization.encode())
        slow = asyncio.create_task(
            validate("http-01", slow_name, slow_token, slow_key_authorization, patient)
        )
        await _until(lambda: world.web.in_flight()[0] == 1, "the slow request held")
        name = world.name()
        token, key_authorization = challenge()
        world.web.serve(token, key_authorization)
        with pytest.raises(ChallengeFailed) as turned_away:
            await validate("http-01", name, token, key_authorization, hurried)
        assert not slow.done()
        world.web.release(path)
        await slow  # raises if the held validation failed
        return turned_away.value, slow.done()

    failure, slow_finished = asyncio.run(scenario())
    assert failure.error == "serverInternal"
    assert "in progress" in failure.detail
    assert slow_finished
