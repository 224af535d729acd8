"""Sector identifier documents (OIDC Core §8.1, OIDC Dynamic Client Registration §5).

A client that names a ``sector_identifier_uri`` shares pairwise subjects with
every other client of that sector. So the sector must vouch for it: the
document at that URL, a JSON array of redirect URIs served over https, has to
list every redirect URI the client registers. Otherwise any client could name
a bank's sector and receive the bank's subjects, which is exactly the
correlation pairwise identifiers exist to prevent.

The document is fetched once, at registration, with a connect/read timeout,
an overall deadline and a size cap, and without following redirects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

MAX_BYTES = 64 * 1024
TIMEOUT_SECONDS = 5.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class SectorIdentifierError(ValueError):
    """The sector identifier document does not vouch for this client."""


def check_sector_identifier(
    uri: str,
    redirect_uris: Sequence[str],
    *,
    allow_http_loopback: bool = False,
    timeout: float = TIMEOUT_SECONDS,
) -> None:
    """Raise :class:`SectorIdentifierError` unless the document at ``uri`` lists
    every one of ``redirect_uris`` (OIDC Core §8.1)."""
    parts = urlsplit(uri)
    loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if parts.scheme != "https" and not (allow_http_loopback and loopback):
        raise SectorIdentifierError(f"sector identifier {uri!r} must be an https URL")
    document = _parse(uri, _fetch(uri, timeout))
    missing = [redirect for redirect in redirect_uris if redirect not in document]
    if missing:
        raise SectorIdentifierError(
            f"the sector identifier document at {uri} does not list the redirect URIs "
            f"{missing}; the sector must list every redirect URI of its clients (OIDC Core §8.1)"
        )


def _fetch(uri: str, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    body = bytearray()
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", uri, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise SectorIdentifierError(
                    f"the sector identifier document at {uri} answered HTTP "
                    f"{response.status_code}, not 200"
                )
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise SectorIdentifierError(
                        f"the sector identifier document at {uri} is larger than {MAX_BYTES} bytes"
                    )
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("overall deadline passed")
    except httpx.HTTPError as exc:
        raise SectorIdentifierError(
            f"cannot fetch the sector identifier document at {uri} "
            f"({type(exc).__name__}); it must answer within {timeout:g} s"
        ) from None
    return bytes(body)


def _parse(uri: str, body: bytes) -> list[str]:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, list) or not all(isinstance(item, str) for item in document):
        raise SectorIdentifierError(
            f"the sector identifier document at {uri} must be a JSON array of redirect URIs"
        )
    return document
