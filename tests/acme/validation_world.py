"""A loopback world for the validation tests: a DNS server, an http-01 and a
tls-alpn-01 responder, and the settings that point the validators at them.

Each test module takes its own 127.0.0.x addresses (ports are picked free), so
modules run side by side under pytest-xdist.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from responders import Http01Responder, LoopbackDns, TlsAlpnResponder

from idp.acme.settings import AcmeSettings
from idp.acme.validation import ChallengeFailed, validate


@dataclass
class World:
    dns: LoopbackDns
    web: Http01Responder
    tls: TlsAlpnResponder

    def settings(self, **overrides: Any) -> AcmeSettings:
        values: dict[str, Any] = {
            "dns_resolver": self.dns.resolver,
            "http01_port": self.web.port,
            "tls_alpn01_port": self.tls.port,
            "validation_timeout_seconds": 10.0,
        }
        values.update(overrides)
        return AcmeSettings(**values)

    def name(self, label: str = "host") -> str:
        """A fresh name pointing at the responders' address."""
        name = f"{label}-{secrets.token_hex(4)}.agency.example"
        self.dns.point(name, self.web.address)
        return name


@contextmanager
def loopback_world(dns_address: str, server_address: str) -> Iterator[World]:
    with (
        LoopbackDns(dns_address) as dns,
        Http01Responder(server_address) as web,
        TlsAlpnResponder(server_address) as tls,
    ):
        yield World(dns, web, tls)


def challenge() -> tuple[str, str]:
    """(token, key authorization) as an ACME server would issue them (§8.1)."""
    token = secrets.token_urlsafe(32)
    thumbprint = secrets.token_urlsafe(32)
    return token, f"{token}.{thumbprint}"


def passes(
    kind: str, name: str, token: str, key_authorization: str, settings: AcmeSettings
) -> None:
    asyncio.run(validate(kind, name, token, key_authorization, settings))


def fails(
    kind: str, name: str, token: str, key_authorization: str, settings: AcmeSettings
) -> ChallengeFailed:
    with pytest.raises(ChallengeFailed) as failure:
        asyncio.run(validate(kind, name, token, key_authorization, settings))
    return failure.value
