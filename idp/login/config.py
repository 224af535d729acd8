"""Login knobs, each a ``HOVIYAT_*`` environment variable with a documented default.

Read once per service, beside its Settings (:func:`idp.context.build_hoviyat`), and
reached through ``hoviyat.login_settings``: two apps in one process each keep their own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LoginSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOVIYAT_", extra="ignore")

    session_ttl_seconds: int = Field(
        default=3600, description="absolute lifetime of a login session"
    )
    otp_ttl_seconds: int = Field(default=180, description="how long a one-time code can be entered")
    otp_max_attempts: int = Field(default=5, description="wrong entries allowed per one-time code")
    otp_per_mobile_per_hour: int = Field(
        default=5, description="codes sent to one mobile number per hour"
    )
    otp_per_national_code_per_hour: int = Field(
        default=10, description="codes sent for one national code per hour (all numbers together)"
    )
    login_attempts_per_national_code_per_hour: int = Field(
        default=20, description="national code + birth date tries per national code per hour"
    )
    sms_sender: Literal["outbox", "http"] = Field(
        default="outbox", description="outbox keeps texts in the database (development only) | http"
    )
    sms_gateway_url: str = Field(
        default="", description="HTTP SMS gateway endpoint (sms_sender=http)"
    )
    sms_gateway_token: str = Field(default="", description="bearer token for the SMS gateway")
    sms_gateway_timeout_seconds: float = Field(
        default=3.0, description="per-message gateway timeout"
    )
