"""CA configuration: ``HOVIYAT_CA_*`` environment variables, each with a default.

Passphrases and PINs come from a file or an environment variable, never from a
command-line argument (argv is visible to every user of the machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CASettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOVIYAT_CA_", extra="ignore")

    key_backend: Literal["file", "pkcs11"] = Field(
        "file", description="where CA keys live: encrypted PKCS#8 files or a PKCS#11 token"
    )
    key_dir: Path | None = Field(None, description="file backend directory; default <data_dir>/ca")
    passphrase: str | None = Field(None, description="passphrase of the PKCS#8 key files")
    passphrase_file: Path | None = Field(
        None,
        description="file holding the passphrase; in development 'ca init' creates "
        "<data_dir>/ca/passphrase (0600) when neither this nor the variable is set",
    )
    pkcs11_module: Path = Field(
        Path("/usr/lib/softhsm/libsofthsm2.so"), description="PKCS#11 module (shared library)"
    )
    pkcs11_token_label: str = Field("hoviyat", description="label of the PKCS#11 token")
    pkcs11_pin: str | None = Field(None, description="user PIN of the token")
    pkcs11_pin_file: Path | None = Field(None, description="file holding the user PIN")
    pkcs11_label_prefix: str = Field(
        "", description="prefix of this deployment's key labels on a shared token"
    )
    crl_partitions: int = Field(
        1,
        ge=1,
        le=4096,
        description="CRL partitions of each issuing CA generation created from now on "
        "('ca init', 'ca rollover', 'ca csr'); fixed for a generation's life, because "
        "each certificate's CDP names its partition. Keep every CRL under 10 MB "
        "(~270,000 entries): partitions = 2 x expected revocations / 270,000, rounded up",
    )


def read_secret(value: str | None, path: Path | None) -> str | None:
    """The variable's value, else the file's first line; None when neither is set."""
    if value:
        return value
    if path is not None:
        return path.read_text().strip()
    return None
