"""dns-01 (RFC 8555 §8.4) and the resolver every method goes through, from the
attacker's side: the zone and even the resolver may be the attacker's."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from responders import free_port
from validation_world import World, challenge, fails, loopback_world, passes

from idp.acme.settings import AcmeSettings
from idp.acme.validation import ChallengeFailed, validate
from idp.acme.validation.dns01 import txt_value
from idp.acme.validation.resolver import parse_resolver


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with loopback_world("127.0.0.43", "127.0.0.44") as world:
        yield world


def test_the_digest_passes_among_other_records(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    _, other = challenge()
    world.dns.set(f"_acme-challenge.{name}", "TXT", txt_value(other), txt_value(key_authorization))
    passes("dns-01", name, token, key_authorization, world.settings())
    assert (f"_acme-challenge.{name}", "TXT") in world.dns.queries()


def test_txt_value_is_rfc8555_example_shape() -> None:
    # §8.4: base64url of SHA-256, no padding: 43 characters.
    value = txt_value("token.thumbprint")
    assert len(value) == 43 and "=" not in value and "+" not in value and "/" not in value


def test_a_wildcard_is_validated_at_its_base_name(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.dns.set(f"_acme-challenge.{name}", "TXT", txt_value(key_authorization))
    passes("dns-01", f"*.{name}", token, key_authorization, world.settings())
    assert (f"_acme-challenge.*.{name}", "TXT") not in world.dns.queries()


def test_a_challenge_delegated_by_cname_passes(world: World) -> None:
    # The usual way to let a DNS-API account answer for a zone it does not hold.
    name = world.name()
    token, key_authorization = challenge()
    delegate = f"{name}.acme-delegation.example"
    world.dns.set(f"_acme-challenge.{name}", "CNAME", delegate)
    world.dns.set(delegate, "TXT", txt_value(key_authorization))
    passes("dns-01", name, token, key_authorization, world.settings())


def test_a_record_split_into_strings_is_joined(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    # Padding so the value crosses a 255-octet string boundary: must not pass,
    # then the real value as one record passes.
    world.dns.set(f"_acme-challenge.{name}", "TXT", "x" * 250 + txt_value(key_authorization))
    assert fails("dns-01", name, token, key_authorization, world.settings()).error == (
        "incorrectResponse"
    )


def test_an_answer_too_large_for_udp_is_read_over_tcp(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    filler = [txt_value(challenge()[1]) for _ in range(30)]  # about 1.3 kB of answers
    world.dns.set(f"_acme-challenge.{name}", "TXT", *filler, txt_value(key_authorization))
    passes("dns-01", name, token, key_authorization, world.settings())


def test_attack_txt_with_the_wrong_digest(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    _, someone_elses = challenge()
    world.dns.set(f"_acme-challenge.{name}", "TXT", txt_value(someone_elses))
    failure = fails("dns-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"


@pytest.mark.parametrize(
    "spoil",
    [
        lambda ka: ka,  # the key authorization itself, not its digest
        lambda ka: txt_value(ka) + "=",  # padded
        lambda ka: " " + txt_value(ka),
        lambda ka: txt_value(ka).upper(),
        lambda ka: txt_value(ka)[:-1],
        lambda ka: txt_value(ka + "\n"),
    ],
)
def test_attack_txt_that_is_almost_the_digest(world: World, spoil: object) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.dns.set(f"_acme-challenge.{name}", "TXT", spoil(key_authorization))  # type: ignore[operator]
    assert fails("dns-01", name, token, key_authorization, world.settings()).error == (
        "incorrectResponse"
    )


def test_attack_digest_at_the_name_itself_not_the_challenge_label(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.dns.set(name, "TXT", txt_value(key_authorization))
    assert fails("dns-01", name, token, key_authorization, world.settings()).error == "dns"


def test_attack_no_txt_record(world: World) -> None:
    name = world.name()
    world.dns.set(f"_acme-challenge.{name}", "A", "127.0.0.44")
    token, key_authorization = challenge()
    failure = fails("dns-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"


def test_attack_nxdomain(world: World) -> None:
    token, key_authorization = challenge()
    failure = fails("dns-01", "absent.agency.example", token, key_authorization, world.settings())
    assert failure.error == "dns"
    assert "NXDOMAIN" in failure.detail


def test_attack_servfail(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.dns.servfail(f"_acme-challenge.{name}")
    failure = fails("dns-01", name, token, key_authorization, world.settings())
    assert failure.error == "dns"


def test_attack_silent_resolver_times_out_and_does_not_hang(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.dns.silence(f"_acme-challenge.{name}")
    settings = world.settings(validation_timeout_seconds=0.5)
    assert fails("dns-01", name, token, key_authorization, settings).error == "dns"


def test_attack_cname_loop(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.dns.set(f"_acme-challenge.{name}", "CNAME", f"loop.{name}")
    world.dns.set(f"loop.{name}", "CNAME", f"_acme-challenge.{name}")
    assert fails("dns-01", name, token, key_authorization, world.settings()).error in {
        "dns",
        "incorrectResponse",
    }


@pytest.mark.parametrize("name", ["a..example", "-" * 64 + ".example", ("a" * 63 + ".") * 5])
def test_attack_malformed_names_fail_as_dns(world: World, name: str) -> None:
    token, key_authorization = challenge()
    assert fails("dns-01", name, token, key_authorization, world.settings()).error == "dns"


# ------------------------------------------------------------ the resolver setting


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
        (" 10.0.0.53:53 ", ("10.0.0.53", 53)),
    ],
)
def test_resolver_setting_forms(value: str, parsed: tuple[str, int]) -> None:
    assert parse_resolver(value) == parsed


@pytest.mark.parametrize(
    "value", ["dns.example:53", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x", "[::1", "[::1]x"]
)
def test_resolver_setting_refuses_what_it_cannot_dial(value: str) -> None:
    with pytest.raises(ValueError, match="dns_resolver"):
        parse_resolver(value)


@hypothesis_settings(max_examples=500)
@given(value=st.text(max_size=40))
def test_fuzz_resolver_setting_parses_or_refuses(value: str) -> None:
    try:
        address, port = parse_resolver(value)
    except ValueError:
        return
    assert 0 < port < 65536
    assert address


# --------------------------------------------------- a resolver that answers garbage


class GarbageResolver:
    """A UDP 'resolver' that answers every query with the bytes it is told to."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(0.2)
        self.answer = b""
        self.framed = False
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def resolver(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def _serve(self) -> None:
        while self.running:
            try:
                query, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            answer = self.answer
            if self.framed and len(query) > 12:
                # The query's id, a response header claiming answers, the
                # question as asked, then the garbage: parsed, not dropped.
                question_end = query.index(b"\x00", 12) + 5
                count = (answer[:2] or b"\x00\x01").ljust(2, b"\x00")
                header = query[:2] + b"\x81\x80\x00\x01" + count + b"\x00\x00\x00\x00"
                answer = header + query[12:question_end] + answer[2:]
            self.sock.sendto(answer, peer)

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def garbage() -> Iterator[GarbageResolver]:
    resolver = GarbageResolver("127.0.0.45")
    yield resolver
    resolver.close()


@hypothesis_settings(max_examples=30)
@given(
    answer=st.binary(min_size=0, max_size=200),
    framed=st.booleans(),
    kind=st.sampled_from(["dns-01", "http-01", "tls-alpn-01"]),
)
def test_fuzz_garbage_from_the_resolver_fails_as_dns(
    garbage: GarbageResolver, answer: bytes, framed: bool, kind: str
) -> None:
    garbage.answer, garbage.framed = answer, framed
    # Should garbage ever parse as an address, nothing is listening where it dials.
    closed = free_port("127.0.0.1")
    settings = AcmeSettings(
        dns_resolver=garbage.resolver,
        validation_timeout_seconds=0.3,
        http01_port=closed,
        tls_alpn01_port=closed,
    )
    token, key_authorization = challenge()
    with pytest.raises(ChallengeFailed) as failure:
        asyncio.run(validate(kind, "a.agency.example", token, key_authorization, settings))
    assert failure.value.error in {"dns", "connection"}


def test_the_system_resolver_is_used_when_none_is_set() -> None:
    # Whatever this machine's resolv.conf says (or lacks), a name under .invalid
    # (RFC 6761) never validates, and the answer is a dns failure, not a crash.
    settings = AcmeSettings(dns_resolver="", validation_timeout_seconds=1)
    token, key_authorization = challenge()
    failure = fails("dns-01", "hoviyat-test.invalid", token, key_authorization, settings)
    assert failure.error == "dns"
