"""Runtime configuration: every knob is a ``HOVIYAT_*`` environment variable with a default.

Settings are passed, not looked up: ``create_app(settings)`` hands its object to
every part it builds. Only entry points (``idp.asgi``, the CLI) read the
environment, through :func:`get_settings`.

The defaults describe the embedded development setup that ``make run`` creates:
SQLite and the synthetic registry under ``./.hoviyat``. Production overrides
``HOVIYAT_DATABASE_URL``, ``HOVIYAT_ISSUER`` and ``HOVIYAT_MODE`` at least
(see ``deploy/hoviyat.env.example``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOVIYAT_", extra="ignore")

    mode: Literal["development", "production"] = Field(
        "development", description="production disables the development OTP outbox and demo data"
    )
    data_dir: Path = Field(Path(".hoviyat"), description="where the embedded state lives")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means sqlite:///<data_dir>/hoviyat.db"
    )
    issuer: str = Field("http://127.0.0.1:8000", description="public base URL, the OIDC issuer")
    secrets_file: Path | None = Field(
        None, description="JSON file with the server secrets; default <data_dir>/secrets.json"
    )
    registry_adapter: str = Field(
        "synthetic", description="registry adapter name: synthetic | http"
    )
    registry_path: Path | None = Field(
        None, description="synthetic registry SQLite file; default <data_dir>/registry.db"
    )
    registry_url: str = Field("http://127.0.0.1:8100", description="base URL for the http adapter")
    registry_timeout_seconds: float = Field(2.0, description="per-call timeout of the http adapter")
    policies_dir: Path | None = Field(
        None, description="extra service policy files (TOML) loaded after the built-in ones"
    )
    access_token_ttl_seconds: int = Field(300, description="lifetime of access tokens")
    max_body_bytes: int = Field(1_048_576, description="largest request body accepted")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="proxy addresses (or CIDR networks) whose X-Forwarded-For/-Proto and "
        "X-Client-Certificate (the TLS client certificate, RFC 8705) headers are believed",
    )
    sector_identifier_allow_http_loopback: bool = Field(
        False,
        description="accept sector identifier documents over http from loopback "
        "(tests only; OIDC Core §8.1 wants https)",
    )
    outbound_allow_loopback: bool = Field(
        False,
        description="let Hoviyat call client URLs (back-channel logout) over http on loopback "
        "(tests and development only; otherwise https to global addresses only)",
    )
    backchannel_delivery_seconds: float = Field(
        1.0,
        ge=0,
        description="how often this process POSTs queued back-channel logout tokens; "
        "0: never (other workers or hosts deliver them)",
    )
    log_level: str = Field("INFO", description="root log level")
    rate_limit_window_seconds: int = Field(60, description="fixed window for rate limits")
    failed_client_authentications_per_window: int = Field(
        20,
        ge=1,
        description="audited invalid_client refusals per registered client and rate-limit "
        "window at /token, /par, /introspect and /revoke; beyond it: 429, not audited",
    )
    commit_linger_ms: float = Field(
        4.0,
        ge=0,
        le=50,
        description="how long the group committer waits for more writes once requests "
        "arrive together (0: never waits)",
    )
    admin_api: bool = Field(
        True,
        description="serve the clients admin API (/v1/admin/clients); false leaves client "
        "management to 'hoviyat clients' on the server",
    )
    dynamic_registration: bool = Field(
        True,
        description="serve dynamic client registration (RFC 7591/7592 at /register, and "
        "registration_endpoint in discovery); false: clients only by an administrator",
    )
    direct_routes: bool = Field(
        True,
        description="answer the busiest exact paths before FastAPI's router (idp.http.direct); "
        "false sends every request through the router",
    )
    require_par: bool = Field(
        False,
        description="refuse every authorization request not pushed first to /par (RFC 9126 "
        "§5); a client can be held to it alone (require_pushed_authorization_requests)",
    )
    par_lifetime_seconds: int = Field(
        60,
        ge=5,
        lt=600,
        description="how long a pushed request's request_uri can be used (RFC 9126 §2.2; "
        "FAPI 2.0 wants under 600 s); it is single use either way",
    )
    dpop_proof_window_seconds: int = Field(
        60,
        ge=5,
        le=300,
        description="how far a DPoP proof's iat may lie from now, either way (RFC 9449 §11.1); "
        "its jti is remembered that long",
    )
    dpop_require_nonce: bool = Field(
        False,
        description="DPoP proofs must carry a server nonce (RFC 9449 §8, §9), given in the "
        "DPoP-Nonce header of a use_dpop_nonce error: proofs made in advance stop working",
    )
    dpop_nonce_lifetime_seconds: int = Field(
        300,
        ge=10,
        le=3600,
        description="how often the DPoP server nonce changes; the previous one is accepted too",
    )
    resource_servers: list[str] = Field(
        default_factory=list,
        description="absolute URIs of agency APIs a client may ask tokens for with the "
        "resource parameter (RFC 8707); Hoviyat's own API, <issuer>/v1, is always one",
    )
    write_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="longest a request waits for its write to commit; past it the answer is "
        "503 with Retry-After (the database is down, locked or overloaded), and shutdown "
        "waits at most this long for the writer",
    )
    console_idle_minutes: int = Field(
        15,
        ge=1,
        le=480,
        description="a console session (/console) unused this long ends; the person signs in again",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hoviyat.db').resolve()}"

    @property
    def resolved_secrets_file(self) -> Path:
        return self.secrets_file or self.data_dir / "secrets.json"

    @property
    def resolved_registry_path(self) -> Path:
        return self.registry_path or self.data_dir / "registry.db"

    @property
    def is_production(self) -> bool:
        return self.mode == "production"

    @property
    def client_certificates_forwarded(self) -> bool:
        """Whether a TLS client certificate can reach Hoviyat at all: only through a
        trusted proxy's header (idp.http.trusted_proxy), so only with one configured."""
        return bool(self.trusted_proxies)


def get_settings() -> Settings:
    """The settings in the environment now, for a command-line entry point.

    Not cached: the application and its parts are handed the one Settings
    object they were built with (``create_app(settings)``), and a command reads
    the environment it runs in.
    """
    return Settings()
