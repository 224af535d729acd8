"""Settings of the service counters, read once per app (``HOVIYAT_COUNTER_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CounterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOVIYAT_COUNTER_", extra="ignore")

    session_minutes: int = Field(
        20, ge=1, le=240, description="how long an assisted session at a service counter lasts"
    )
    codes_per_session: int = Field(
        3, ge=1, le=10, description="presence codes a clerk may have texted in one assisted session"
    )
    queue_size: int = Field(
        100, ge=1, le=1000, description="assisted sessions shown in a supervisor's review queue"
    )
