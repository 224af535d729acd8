"""Login knobs, each a ``HOVIYAT_*`` environment variable with a documented default.

Read once per service, beside its Settings (:func:`idp.context.build_hoviyat`), and
reached through ``hoviyat.login_settings``: two apps in one process each keep their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
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
    # Passkeys (WebAuthn Level 3) for level high, issue 14.
    webauthn_attestation: Literal["none", "direct"] = Field(
        default="none",
        description=(
            "attestation asked of a new passkey (WebAuthn §5.4.7): none (any authenticator) | "
            "direct (the authenticator must prove its model; use with HOVIYAT_WEBAUTHN_AAGUIDS)"
        ),
    )
    webauthn_aaguids: list[str] = Field(
        default_factory=list,
        description=(
            "authenticator models (AAGUIDs, e.g. 'cb69481e-8ff7-4039-93ec-0a2729a154a8') a "
            "passkey may be registered from; empty: any (requires webauthn_attestation=direct)"
        ),
    )
    webauthn_attestation_roots_file: Path | None = Field(
        default=None,
        description=(
            "PEM file of the authenticator vendors' attestation root certificates (from the "
            "FIDO Metadata Service) that a direct attestation must chain to; required with direct"
        ),
    )
    webauthn_challenge_ttl_seconds: int = Field(
        default=300, description="how long a passkey ceremony's challenge can be answered"
    )

    @model_validator(mode="after")
    def _aaguids_need_attestation(self) -> LoginSettings:
        # Without attestation the AAGUID is whatever the client says (often zeros):
        # an allow-list would only look like a policy.
        if self.webauthn_aaguids and self.webauthn_attestation != "direct":
            raise ValueError("HOVIYAT_WEBAUTHN_AAGUIDS needs HOVIYAT_WEBAUTHN_ATTESTATION=direct")
        # A chain checked against nothing proves nothing: anyone can make a certificate
        # that names any model.
        if self.webauthn_attestation == "direct" and self.webauthn_attestation_roots_file is None:
            raise ValueError(
                "HOVIYAT_WEBAUTHN_ATTESTATION=direct needs HOVIYAT_WEBAUTHN_ATTESTATION_ROOTS_FILE"
            )
        self.webauthn_aaguids = [aaguid.lower() for aaguid in self.webauthn_aaguids]
        return self
