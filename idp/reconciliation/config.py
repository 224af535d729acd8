"""Settings of reconciliation jobs (``HOVIYAT_RECONCILIATION_*``), beside the main settings.

Legacy files are far larger than any other request body, so their upload
limit is separate from ``HOVIYAT_MAX_BODY_BYTES``. Read once per service, beside its
Settings (:func:`idp.context.build_hoviyat`, ``hoviyat.reconciliation_settings``), or
once per command (``hoviyat reconcile``).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReconciliationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOVIYAT_RECONCILIATION_", extra="ignore")

    max_upload_bytes: int = Field(
        268_435_456, description="largest legacy CSV accepted by POST /v1/reconciliations"
    )
    stale_after_seconds: int = Field(
        60, description="a running job silent this long lost its worker and may be taken over"
    )
    batch_size: int = Field(
        500, description="rows per audit transaction and per fsync of the output"
    )
    max_rows_per_subject: int = Field(
        10,
        ge=1,
        le=254,
        description="rows of one legacy file that may name the same national code; "
        "later ones are not looked up and are marked duplicate-subject",
    )
