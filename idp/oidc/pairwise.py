"""Pairwise subject identifiers (OIDC Core §8.1): agencies cannot correlate users by ``sub``.

``sub = base64url(SHA-256(sector_identifier || national_code || salt))``. The
national code is always 10 digits and the salt 32 bytes, so the concatenation
is unambiguous without separators. The salt is derived from the server's
subject pepper, so it is shared by every worker and survives restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import urlsplit


@lru_cache(maxsize=4)
def pairwise_salt(subject_pepper: bytes) -> bytes:
    # A derived key rather than the pepper itself: the pepper also keys the
    # audit log's subject hashes, and one key should serve one purpose.
    return hmac.new(subject_pepper, b"hoviyat oidc pairwise salt", hashlib.sha256).digest()


def sector_of(sector_identifier: str | None, redirect_uris: Sequence[str], client_id: str) -> str:
    """§8.1: the sector is the configured one, else the single host of the redirect URIs.

    A client whose redirect URIs span several hosts and that names no sector
    falls back to its own client id, so it never shares subjects by accident.
    """
    if sector_identifier:
        host = urlsplit(sector_identifier).hostname
        return host or sector_identifier
    hosts = {urlsplit(uri).hostname for uri in redirect_uris}
    if len(hosts) == 1:
        (host,) = hosts
        if host:
            return host
    return client_id


def pairwise_subject(sector: str, national_code: str, salt: bytes) -> str:
    digest = hashlib.sha256(sector.encode("utf-8") + national_code.encode("ascii") + salt).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
