"""dns-01 (RFC 8555 §8.4): a TXT record at ``_acme-challenge.<name>`` holds
base64url(SHA-256(key authorization)).

A wildcard ``*.example.org`` is validated at ``_acme-challenge.example.org``
(§7.1.3: the authorization is for the base name). Any one matching record
passes; others beside it (a renewal in progress, another client) are ignored.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from idp.acme.validation import resolver
from idp.acme.validation.failure import ChallengeFailed

if TYPE_CHECKING:
    from idp.acme.settings import AcmeSettings


def txt_value(key_authorization: str) -> str:
    """The record value §8.4 asks for: unpadded base64url of the SHA-256 digest."""
    digest = hashlib.sha256(key_authorization.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def challenge_name(identifier: str) -> str:
    base = identifier.removeprefix("*.")
    return f"_acme-challenge.{base}"


async def validate_dns01(
    identifier: str, token: str, key_authorization: str, settings: AcmeSettings
) -> None:
    name = challenge_name(identifier)
    expected = txt_value(key_authorization).encode()
    records = await resolver.txt_records(name, settings)
    if not records:
        raise ChallengeFailed("incorrectResponse", f"no TXT record at {name}")
    if expected not in records:
        raise ChallengeFailed(
            "incorrectResponse",
            f"{len(records)} TXT record(s) at {name}, none is the key authorization's digest",
        )
