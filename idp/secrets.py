"""Server secrets that must survive restarts and be shared by every worker.

They are generated once (``hoviyat init``) into a 0600 JSON file. Each is a
256-bit key with one purpose:

- ``client_secret_key``: HMAC key for the digests of OAuth client secrets;
- ``subject_pepper``: HMAC key that turns national codes into the subject hashes
  stored in audit records (a leaked log names nobody);
- ``key_encryption_key``: AES-256-GCM key for token-signing keys at rest.

Further keys with one purpose each (the ACME nonce MAC, say) are derived from
these by :meth:`ServerSecrets.derived_key`, so the file keeps its format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

_NAMES = ("client_secret_key", "subject_pepper", "key_encryption_key")


@dataclass(frozen=True)
class ServerSecrets:
    client_secret_key: bytes
    subject_pepper: bytes
    key_encryption_key: bytes

    def derived_key(self, purpose: str) -> bytes:
        """A 256-bit key of its own for ``purpose``: HMAC-SHA256 of the purpose under
        ``key_encryption_key`` (a PRF, as in NIST SP 800-108's KDF in counter mode with
        one block). Every worker and host derives the same key; no two purposes share one."""
        label = b"hoviyat derived key\x00" + purpose.encode("utf-8")
        return hmac.new(self.key_encryption_key, label, hashlib.sha256).digest()


def ensure_secrets(path: Path) -> ServerSecrets:
    """Load the secrets file, creating missing secrets; never overwrites one that exists."""
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    changed = False
    for name in _NAMES:
        if name not in stored:
            stored[name] = secrets.token_hex(32)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle)
        os.replace(tmp, path)
    return load_secrets(path)


def load_secrets(path: Path) -> ServerSecrets:
    try:
        stored = json.loads(path.read_text())
        return ServerSecrets(**{name: bytes.fromhex(stored[name]) for name in _NAMES})
    except FileNotFoundError as exc:
        raise RuntimeError(f"secrets file {path} is missing: run 'hoviyat init'") from exc
    except (KeyError, ValueError) as exc:
        raise RuntimeError(f"secrets file {path} is damaged: {exc}") from exc
