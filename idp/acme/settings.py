"""Settings of the ACME server (``HOVIYAT_ACME_*``), beside the main settings.

Read once per service (:func:`idp.context.build_hoviyat`, ``hoviyat.acme_settings``).
Validation targets are settings so tests point names at loopback addresses
without touching the system: the resolver and the ports the validators dial.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AcmeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOVIYAT_ACME_", extra="ignore")

    # --- protocol (nonces, accounts, orders) ---
    nonce_lifetime_seconds: int = Field(
        3600, ge=10, le=86400, description="how long an unused Replay-Nonce stays good"
    )
    order_lifetime_seconds: int = Field(
        86400, ge=60, description="a pending order (and its authorizations) expires after this"
    )
    authorization_lifetime_seconds: int = Field(
        86400 * 7, ge=60, description="a valid authorization may be reused this long"
    )
    default_profile: str = Field(
        "tls-server", description="certificate profile of orders that name none"
    )
    profiles: list[str] = Field(
        default_factory=lambda: ["tls-server", "tls-server-short"],
        description="certificate profiles an ACME order may name (directory meta.profiles)",
    )
    max_identifiers: int = Field(100, ge=1, le=100, description="names one order may ask for")

    # --- validation (where the validators dial) ---
    dns_resolver: str = Field(
        "",
        description="host:port of the DNS resolver for dns-01 and for the names "
        "http-01/tls-alpn-01 dial; empty: the system's",
    )
    http01_port: int = Field(80, ge=1, le=65535, description="port http-01 fetches from")
    tls_alpn01_port: int = Field(443, ge=1, le=65535, description="port tls-alpn-01 dials")
    validation_timeout_seconds: float = Field(
        10.0, gt=0, le=60, description="whole-validation deadline of one challenge"
    )
    validation_concurrency: int = Field(
        32, ge=1, le=1024, description="challenges validated at once per process"
    )
    validation_refused_networks: list[str] = Field(
        # Never a server's address: "this host", link-local (cloud metadata at
        # 169.254.169.254), multicast, reserved. Loopback and private ranges stay
        # dialable (agency servers sit on private networks; tests on loopback);
        # add them here where validation must not reach the service's own host.
        default_factory=lambda: [
            "0.0.0.0/8",
            "169.254.0.0/16",
            "224.0.0.0/4",
            "240.0.0.0/4",
            "::/128",
            "fe80::/10",
            "ff00::/8",
        ],
        description="networks validation never dials: a name resolving only into them fails",
    )

    @field_validator("dns_resolver")
    @classmethod
    def _resolver_is_an_address(cls, value: str) -> str:
        if value.strip():
            from idp.acme.validation.resolver import parse_resolver

            parse_resolver(value)  # raises ValueError naming what is wrong
        return value.strip()

    @field_validator("validation_refused_networks")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(network.strip(), strict=False)) for network in value]
