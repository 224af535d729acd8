"""The development passphrase file: ``hoviyat ca init`` creates it when none is configured.

Production must configure ``HOVIYAT_CA_PASSPHRASE_FILE`` (or the variable)
itself; a passphrase generated next to the keys it protects only keeps a
development CA's keys off a casual backup.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ca.settings import CASettings


def ensure_development_passphrase(settings: CASettings, data_dir: Path) -> Path | None:
    """Create ``<key_dir>/passphrase`` (0600) if no passphrase is configured; its path if made."""
    if settings.key_backend != "file" or settings.passphrase or settings.passphrase_file:
        return None
    directory = settings.key_dir or data_dir / "ca"
    path = directory / "passphrase"
    if path.exists():
        return None
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path
