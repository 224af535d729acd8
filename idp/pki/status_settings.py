"""Certificate status knobs (CRLs, OCSP): ``HOVIYAT_CRL_*`` and ``HOVIYAT_OCSP_*`` variables."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ca.crl import MAX_ENTRIES_PER_CRL
from ca.hierarchy import Hierarchy
from idp.storage.engine import Database


class StatusSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOVIYAT_", extra="ignore")

    crl_validity_hours: int = Field(
        default=168,
        description="full CRL nextUpdate - thisUpdate (7 days, the CA/B Forum maximum is 10)",
    )
    crl_refresh_hours: int = Field(
        default=84,
        description="reissue a full CRL this long before its nextUpdate even without news",
    )
    delta_crl_validity_hours: int = Field(
        default=24, description="delta CRL nextUpdate - thisUpdate"
    )
    delta_crl_refresh_hours: int = Field(
        default=12, description="reissue a delta CRL this long before"
    )
    delta_crls: bool = Field(
        default=True, description="publish delta CRLs and point full CRLs at them (Freshest CRL)"
    )
    root_crl_validity_days: int = Field(
        default=365,
        ge=1,
        le=365,
        description="root CRL nextUpdate - thisUpdate, signed on the root's machine "
        "('ca root-crl') and published by 'ca import-crl' (CA/B BR 4.9.7: at most 12 months)",
    )
    crl_max_entries: int = Field(
        default=MAX_ENTRIES_PER_CRL,
        description="entries above which a CRL is reported oversize (10 MB, ~270,000 entries)",
    )
    crl_reissue_on_revocation: bool = Field(
        default=True, description="reissue the affected CRLs right after each revocation"
    )
    ocsp_validity_minutes: int = Field(
        default=720, description="OCSP nextUpdate - thisUpdate (RFC 5019 section 6: hours to days)"
    )
    ocsp_refresh_minutes: int = Field(
        default=60, description="a cached OCSP answer older than this is signed again"
    )
    ocsp_cache_entries: int = Field(default=100_000, description="OCSP answers cached per process")
    ocsp_responder_renew_days: int = Field(
        default=7,
        description="a responder certificate (profile ocsp-responder: 90 days) with less "
        "left than this is replaced",
    )


def utc(moment: datetime) -> datetime:
    """A caller's "now" in UTC, a naive one being taken as UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class StatusService:
    """What the CRL publisher and the OCSP responder both stand on."""

    def __init__(
        self, db: Database, hierarchy: Hierarchy, settings: StatusSettings | None = None
    ) -> None:
        self.db = db
        self.hierarchy = hierarchy
        self.settings = settings or StatusSettings()
