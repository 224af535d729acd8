"""The running service's parts, built once per process and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from idp.acme.settings import AcmeSettings
from idp.clients import ClientDirectory
from idp.login.config import LoginSettings
from idp.ratelimit import RateLimiter
from idp.reconciliation.config import ReconciliationSettings
from idp.secrets import ServerSecrets, load_secrets
from idp.settings import Settings
from idp.storage.engine import Database
from idp.storage.group_commit import GroupCommitter
from idp.tokens import KeyRing
from policies.service_policy import ServicePolicy, load_service_policies
from verifiers.registry import Registries, open_registries


@dataclass
class Hoviyat:
    settings: Settings
    db: Database
    secrets: ServerSecrets
    registries: Registries
    policies: dict[str, ServicePolicy]
    keyring: KeyRing
    committer: GroupCommitter
    rate_limiter: RateLimiter
    # The feature settings beside Settings, read once with it: each app sees its own.
    login_settings: LoginSettings
    reconciliation_settings: ReconciliationSettings
    acme_settings: AcmeSettings
    client_directory: ClientDirectory = field(default_factory=ClientDirectory)

    def close(self) -> None:
        self.committer.close()
        self.registries.close()
        self.db.dispose()


def registry_options(settings: Settings) -> dict[str, Any]:
    return {
        "path": settings.resolved_registry_path,
        "url": settings.registry_url,
        "timeout": settings.registry_timeout_seconds,
    }


def build_hoviyat(
    settings: Settings,
    *,
    login_settings: LoginSettings | None = None,
    reconciliation_settings: ReconciliationSettings | None = None,
    acme_settings: AcmeSettings | None = None,
) -> Hoviyat:
    """The parts of one service; feature settings not given are read from the environment now."""
    # Read before anything is opened: a bad value fails here with nothing to close.
    login_settings = login_settings or LoginSettings()
    reconciliation_settings = reconciliation_settings or ReconciliationSettings()
    acme_settings = acme_settings or AcmeSettings()
    secrets = load_secrets(settings.resolved_secrets_file)
    db = Database(settings.resolved_database_url, background_checkpoints=True)
    committer = GroupCommitter(
        db,
        linger_seconds=settings.commit_linger_ms / 1000,
        write_timeout=settings.write_timeout_seconds,
    )
    rate_limiter = RateLimiter(settings.rate_limit_window_seconds)
    committer.after_commit(rate_limiter.flush)
    return Hoviyat(
        settings=settings,
        db=db,
        secrets=secrets,
        registries=open_registries(settings.registry_adapter, registry_options(settings)),
        policies=load_service_policies(settings.policies_dir),
        keyring=KeyRing(db, secrets.key_encryption_key),
        committer=committer,
        rate_limiter=rate_limiter,
        login_settings=login_settings,
        acme_settings=acme_settings,
        reconciliation_settings=reconciliation_settings,
    )


async def get_hoviyat(request: Request) -> Hoviyat:
    hoviyat: Hoviyat = request.app.state.hoviyat
    return hoviyat
