"""http-01 (RFC 8555 §8.3) from the attacker's side: the server on the other end
is the one trying to get a certificate it should not, or to hurt the validator."""

from __future__ import annotations

import gzip
import http.server
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from responders import CHALLENGE_PATH, Http01Responder, RawTcpResponder, free_port
from validation_world import World, challenge, fails, loopback_world, passes

from idp.acme.validation.failure import ChallengeFailed
from idp.acme.validation.http01 import MAX_BODY, MAX_REDIRECTS, redirect_target


@contextmanager
def answering_on_another_port(world: World) -> Iterator[int]:
    """A second responder that would answer, on a port http-01 does not use."""
    with Http01Responder(world.web.address, free_port(world.web.address)) as other:
        other.answer("/x", "anything")
        yield other.port


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with loopback_world("127.0.0.40", "127.0.0.41") as world:
        yield world


def test_the_key_authorization_passes_and_is_asked_of_the_name(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.web.serve(token, f"  {key_authorization}\r\n")  # §8.3: whitespace is trimmed
    passes("http-01", name, token, key_authorization, world.settings())
    assert (f"{name}:{world.web.port}", CHALLENGE_PATH + token) in world.web.requests()


def test_a_name_behind_a_cname_passes(world: World) -> None:
    name = world.name()
    alias = f"www.{name}"
    world.dns.set(alias, "CNAME", name)
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    passes("http-01", alias, token, key_authorization, world.settings())


def test_attack_wrong_key_authorization(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    _, someone_elses = challenge()
    world.web.serve(token, someone_elses)
    failure = fails("http-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"


def test_attack_right_value_plus_junk(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    for body in (
        key_authorization + "junk",
        "junk" + key_authorization,
        f"{key_authorization}\n{key_authorization}",
        f"<html>{key_authorization}</html>",
        key_authorization + "\x00",
    ):
        world.web.serve(token, body)
        failure = fails("http-01", name, token, key_authorization, world.settings())
        assert failure.error == "incorrectResponse", body


def test_attack_token_only_without_thumbprint(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.web.serve(token, token)
    assert fails("http-01", name, token, key_authorization, world.settings()).error == (
        "incorrectResponse"
    )


def test_attack_huge_body_is_not_read_whole(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    total = 256 * 1024 * 1024
    world.web.huge(CHALLENGE_PATH + token, total, prefix=key_authorization.encode())
    failure = fails("http-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"
    assert str(MAX_BODY) in failure.detail
    # The server stopped being read long before the end: it saw the connection close.
    for _ in range(1000):
        sent = world.web.state.sent.get(CHALLENGE_PATH + token)
        if sent is not None:
            break
        time.sleep(0.01)
    assert sent is not None and sent < total // 4


def test_attack_compressed_body_is_not_inflated(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    packed = gzip.compress(key_authorization.encode())

    def gzipped(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(packed)))
        handler.end_headers()
        handler.wfile.write(packed)

    world.web.on(CHALLENGE_PATH + token, gzipped)
    # Asked for identity: a gzip answer is not the key authorization (and a
    # small gzip could not be made to inflate past the body limit either).
    assert fails("http-01", name, token, key_authorization, world.settings()).error == (
        "incorrectResponse"
    )


def test_attack_slow_server_times_out_and_does_not_hang() -> None:
    # A server that accepts and never answers: the deadline ends it.
    with loopback_world("127.0.0.40", "127.0.0.48") as world:
        name = world.name()
        token, key_authorization = challenge()
        world.web.hold(CHALLENGE_PATH + token)
        failure = fails(
            "http-01",
            name,
            token,
            key_authorization,
            world.settings(validation_timeout_seconds=0.5),
        )
        assert failure.error == "connection"


def test_attack_trickling_server_is_cut_off_by_the_whole_deadline(world: World) -> None:
    # One octet at a time keeps any per-read timeout happy; only the deadline
    # of the whole validation stops it (slowloris against the validator).
    name = world.name()
    token, key_authorization = challenge()
    stop = threading.Event()

    def trickle(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "8000")
        handler.end_headers()
        for _ in range(8000):
            if stop.wait(0.05):
                return
            handler.wfile.write(b" ")
            handler.wfile.flush()

    world.web.on(CHALLENGE_PATH + token, trickle)
    failure = fails(
        "http-01", name, token, key_authorization, world.settings(validation_timeout_seconds=0.5)
    )
    assert failure.error == "connection"


def test_attack_redirect_loop(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    path = CHALLENGE_PATH + token
    world.web.redirect(path, path)
    failure = fails("http-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"
    assert "redirects" in failure.detail
    assert [p for _, p in world.web.requests()].count(path) == MAX_REDIRECTS + 1


def test_redirects_within_the_limit_are_followed_to_another_name(world: World) -> None:
    name, other = world.name(), world.name("other")
    token, key_authorization = challenge()
    hops = [f"/hop/{token}/{i}" for i in range(MAX_REDIRECTS - 1)]
    world.web.redirect(CHALLENGE_PATH + token, hops[0], status=301)
    for here, there in itertools.pairwise(hops):
        world.web.redirect(here, there, status=307)
    final = f"/final/{token}"
    world.web.redirect(hops[-1], f"http://{other}:{world.web.port}{final}", status=308)
    world.web.answer(final, key_authorization)
    passes("http-01", name, token, key_authorization, world.settings())
    assert (f"{other}:{world.web.port}", final) in world.web.requests()


@pytest.mark.parametrize(
    "location",
    [
        "ftp://{name}/x",
        "file:///etc/passwd",
        "gopher://{name}:{port}/x",
        "javascript:alert(1)",
        "data:text/plain,{ka}",
        "ws://{name}:{port}/x",
    ],
)
def test_attack_redirect_to_a_non_http_scheme(world: World, location: str) -> None:
    name = world.name()
    token, key_authorization = challenge()
    target = location.format(name=name, port=world.web.port, ka=key_authorization)
    world.web.redirect(CHALLENGE_PATH + token, target)
    failure = fails("http-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"


@pytest.mark.parametrize(
    "location",
    [
        "http://{name}:22/x",  # another port on the same host
        "http://{name}/x",  # port 80 while http-01 is on another port here
        "https://{name}:{port}/x",  # https, but not on the tls port
        "http://{name}:{other_port}/x",
    ],
)
def test_attack_redirect_to_a_port_not_allowed(world: World, location: str) -> None:
    name = world.name()
    token, key_authorization = challenge()
    with answering_on_another_port(world) as other_port:
        target = location.format(name=name, port=world.web.port, other_port=other_port)
        world.web.redirect(CHALLENGE_PATH + token, target)
        failure = fails("http-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"
    assert "port" in failure.detail


@pytest.mark.parametrize("host", ["127.0.0.41", "[::1]", "2130706473", "0x7f.0.0.41"])
def test_attack_redirect_to_an_ip_literal(world: World, host: str) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.web.redirect(CHALLENGE_PATH + token, f"http://{host}:{world.web.port}/x")
    failure = fails("http-01", name, token, key_authorization, world.settings())
    # Refused outright, or (a number that is no IP to httpx) an unresolvable name.
    assert failure.error in {"incorrectResponse", "dns"}


def test_attack_redirect_with_credentials(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.web.redirect(CHALLENGE_PATH + token, f"http://user:pw@{name}:{world.web.port}/x")
    assert fails("http-01", name, token, key_authorization, world.settings()).error == (
        "incorrectResponse"
    )


def test_attack_redirect_without_location(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()

    def bare(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    world.web.on(CHALLENGE_PATH + token, bare)
    assert fails("http-01", name, token, key_authorization, world.settings()).error == (
        "incorrectResponse"
    )


@pytest.mark.parametrize("status", [201, 204, 403, 404, 500])
def test_attack_key_authorization_under_another_status(world: World, status: int) -> None:
    name = world.name()
    token, key_authorization = challenge()

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        body = key_authorization.encode() if status != 204 else b""
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    world.web.on(CHALLENGE_PATH + token, answer)
    failure = fails("http-01", name, token, key_authorization, world.settings())
    assert failure.error == "incorrectResponse"
    assert str(status) in failure.detail


def test_attack_error_detail_does_not_echo_what_the_server_said(world: World) -> None:
    # The detail goes back to the ACME client: a validation must not become a
    # way to read a page the validator can reach and the client cannot.
    name = world.name()
    token, key_authorization = challenge()
    world.web.serve(token, "INTERNAL-SECRET-PAGE")
    failure = fails("http-01", name, token, key_authorization, world.settings())
    assert "INTERNAL-SECRET-PAGE" not in failure.detail


def test_attack_connection_refused(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    closed = free_port(world.web.address)
    failure = fails("http-01", name, token, key_authorization, world.settings(http01_port=closed))
    assert failure.error == "connection"


def test_attack_garbage_instead_of_http(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()

    def garbage(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"\x16\x03\x01\x00\xffnot http at all\r\n\r\n")

    world.web.on(CHALLENGE_PATH + token, garbage)
    assert fails("http-01", name, token, key_authorization, world.settings()).error == (
        "connection"
    )


def test_attack_nxdomain(world: World) -> None:
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    failure = fails("http-01", "absent.agency.example", token, key_authorization, world.settings())
    assert failure.error == "dns"


def test_attack_name_without_addresses(world: World) -> None:
    name = world.name()
    world.dns.set(name, "A")  # the name exists (it has a TXT), but no address
    world.dns.set(name, "TXT", "v=spf1 -all")
    token, key_authorization = challenge()
    assert fails("http-01", name, token, key_authorization, world.settings()).error == "dns"


def test_attack_wildcard_is_not_validated_by_http01(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    failure = fails("http-01", f"*.{name}", token, key_authorization, world.settings())
    assert failure.error == "malformed"


def test_attack_proxy_from_the_environment_is_not_used(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy variable in the service's environment must not put a third party
    # between the validator and the name it checks.
    closed = free_port("127.0.0.1")
    for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{closed}")
    name = world.name()
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    passes("http-01", name, token, key_authorization, world.settings())


# ------------------------------------------------------------------ fuzzing


@hypothesis_settings(max_examples=60)
@given(body=st.binary(max_size=300) | st.text(max_size=120).map(str.encode))
def test_fuzz_any_body_passes_only_if_it_is_the_key_authorization(
    world: World, body: bytes
) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.web.serve(token, body)
    if body.strip() == key_authorization.encode():
        passes("http-01", name, token, key_authorization, world.settings())
    else:
        assert fails("http-01", name, token, key_authorization, world.settings()).error == (
            "incorrectResponse"
        )


@hypothesis_settings(max_examples=500)
@given(
    location=st.text(max_size=80)
    | st.from_regex(r"\A(https?|ftp|file)://[a-z0-9.\-\[\]:@]{0,30}(:\d{0,6})?/.{0,10}\Z")
)
def test_fuzz_redirect_target_keeps_its_bounds(world: World, location: str) -> None:
    settings = world.settings(http01_port=80, tls_alpn01_port=443)
    current = httpx.URL("http://a.agency.example/.well-known/acme-challenge/t")
    try:
        target = redirect_target(current, location, settings)
    except ChallengeFailed as failure:
        assert failure.error == "incorrectResponse"
        return
    assert target.scheme in {"http", "https"}
    assert (target.port or {"http": 80, "https": 443}[target.scheme]) == {
        "http": 80,
        "https": 443,
    }[target.scheme]
    assert target.host and not target.userinfo


# ------------------------------------------------------------ where it never dials


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "0.0.0.0", "224.0.0.1", "255.255.255.255", "fe80::1", "::"]
)
def test_attack_name_pointing_at_a_never_dialled_address(world: World, address: str) -> None:
    # Cloud metadata, "this host", multicast: a validation is no way to reach them.
    name = world.name()
    world.dns.set(name, "A")
    world.dns.point(name, address)
    token, key_authorization = challenge()
    for kind in ("http-01", "tls-alpn-01"):
        failure = fails(kind, name, token, key_authorization, world.settings())
        assert failure.error == "dns"
        assert "does not dial" in failure.detail


def test_attack_loopback_refused_where_the_operator_says_so(world: World) -> None:
    name = world.name()
    mapped = world.name("mapped")
    world.dns.set(mapped, "A")
    world.dns.point(mapped, f"::ffff:{world.web.address}")  # IPv4-mapped IPv6
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    settings = world.settings(validation_refused_networks=["127.0.0.0/8"])
    for target in (name, mapped):
        assert fails("http-01", target, token, key_authorization, settings).error == "dns"
    passes("http-01", name, token, key_authorization, world.settings())


def test_a_name_with_an_allowed_address_beside_a_refused_one_dials_the_allowed(
    world: World,
) -> None:
    name = world.name()
    world.dns.set(name, "AAAA", "fe80::1")
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    passes("http-01", name, token, key_authorization, world.settings())


@pytest.fixture(scope="module")
def raw(world: World) -> Iterator[RawTcpResponder]:
    with RawTcpResponder(world.web.address) as server:
        yield server


@hypothesis_settings(max_examples=80)
@given(
    payload=st.binary(max_size=300)
    | st.tuples(
        st.sampled_from([b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 302 Found\r\n", b"HTTP/1.1 "]),
        st.binary(max_size=300),
    ).map(b"".join)
)
def test_fuzz_any_bytes_instead_of_http_fail_cleanly(
    world: World, raw: RawTcpResponder, payload: bytes
) -> None:
    # Whatever comes back, the outcome is a ChallengeFailed (never another
    # exception, never a pass: no payload here holds the key authorization).
    name = world.name()
    token, key_authorization = challenge()
    raw.payload = payload
    settings = world.settings(http01_port=raw.port, validation_timeout_seconds=2)
    assert fails("http-01", name, token, key_authorization, settings).error in {
        "connection",
        "incorrectResponse",
        "dns",  # a redirect to a name the loopback zone does not hold
    }


def test_attack_endless_headers_are_not_buffered(world: World, raw: RawTcpResponder) -> None:
    name = world.name()
    token, key_authorization = challenge()
    raw.payload = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * (2 * 1024 * 1024) + b"\r\n"
    settings = world.settings(http01_port=raw.port)
    failure = fails("http-01", name, token, key_authorization, settings)
    assert failure.error == "connection"


def test_a_chunked_key_authorization_passes(world: World, raw: RawTcpResponder) -> None:
    name = world.name()
    token, key_authorization = challenge()
    half = len(key_authorization) // 2
    chunks = [key_authorization[:half], key_authorization[half:]]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c.encode()) for c in chunks) + b"0\r\n\r\n"
    raw.payload = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    passes("http-01", name, token, key_authorization, world.settings(http01_port=raw.port))


def test_a_redirect_to_https_on_the_tls_port_is_followed_with_sni(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    with Http01Responder(world.web.address, free_port(world.web.address), https=True) as tls_web:
        tls_web.answer(f"/secure/{token}", key_authorization)
        world.web.redirect(CHALLENGE_PATH + token, f"https://{name}:{tls_web.port}/secure/{token}")
        settings = world.settings(tls_alpn01_port=tls_web.port)
        passes("http-01", name, token, key_authorization, settings)
        assert (f"{name}:{tls_web.port}", f"/secure/{token}") in tls_web.requests()


def test_attack_redirect_to_https_that_is_plain_http(world: World) -> None:
    name = world.name()
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    world.web.redirect(f"/plain/{token}", f"https://{name}:{world.web.port}{CHALLENGE_PATH}{token}")
    world.web.redirect(CHALLENGE_PATH + "start" + token, f"/plain/{token}")
    settings = world.settings(tls_alpn01_port=world.web.port)
    assert fails("http-01", name, "start" + token, key_authorization, settings).error in {
        "tls",
        "connection",
    }


def test_attack_redirect_to_a_name_at_a_never_dialled_address(world: World) -> None:
    name, metadata = world.name(), world.name("metadata")
    world.dns.set(metadata, "A", "169.254.169.254")
    token, key_authorization = challenge()
    world.web.redirect(CHALLENGE_PATH + token, f"http://{metadata}:{world.web.port}/latest/")
    failure = fails("http-01", name, token, key_authorization, world.settings())
    assert failure.error == "dns"


def test_ipv6_refusing_falls_back_to_ipv4(world: World) -> None:
    name = world.name()
    world.dns.set(name, "AAAA", "::1")  # nothing listens there on this port
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    passes("http-01", name, token, key_authorization, world.settings())


def test_ipv6_swallowing_packets_leaves_time_for_ipv4(world: World) -> None:
    # 2001:db8::/32 is documentation space: unroutable, so the dial hangs (or
    # fails at once where there is no IPv6 route). Either way IPv4 gets its share.
    name = world.name()
    world.dns.set(name, "AAAA", "2001:db8::1")
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    passes("http-01", name, token, key_authorization, world.settings(validation_timeout_seconds=2))


def test_attack_connection_closed_without_a_response(world: World, raw: RawTcpResponder) -> None:
    name = world.name()
    token, key_authorization = challenge()
    raw.payload = b""
    settings = world.settings(http01_port=raw.port)
    assert fails("http-01", name, token, key_authorization, settings).error == "connection"


def test_attack_a_flood_of_informational_responses_is_no_answer(
    world: World, raw: RawTcpResponder
) -> None:
    name = world.name()
    token, key_authorization = challenge()
    raw.payload = b"HTTP/1.1 100 Continue\r\n\r\n" * 20000
    settings = world.settings(http01_port=raw.port, validation_timeout_seconds=1)
    assert fails("http-01", name, token, key_authorization, settings).error == "connection"


def test_attack_a_long_address_list_is_not_scanned(world: World) -> None:
    # Twenty addresses where only the last answers: one address a family is
    # dialled, so a name cannot make the validator sweep a network for it.
    name = world.name()
    decoys = [f"127.0.0.{n}" for n in range(55, 60)] * 4
    world.dns.set(name, "A", *decoys[:-1], world.web.address)
    token, key_authorization = challenge()
    world.web.serve(token, key_authorization)
    assert fails("http-01", name, token, key_authorization, world.settings()).error == (
        "connection"
    )
    assert CHALLENGE_PATH + token not in [path for _, path in world.web.requests()]
