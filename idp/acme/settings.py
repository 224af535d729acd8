"""Settings of the ACME server (``HOVIYAT_ACME_*``), beside the main settings.

Read once per service (:func:`idp.context.build_hoviyat`, ``hoviyat.acme_settings``).
Validation targets are settings so tests point names at loopback addresses
without touching the system: the resolver and the ports the validators dial.
"""

from __future__ import annotations

from pydantic import Field
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
