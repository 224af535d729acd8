"""Proof Key for Code Exchange (RFC 7636), S256 only.

RFC 9700 §2.1.1: ``plain`` adds nothing against an attacker who can read the
authorization request, so it is refused outright rather than negotiated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

SUPPORTED_METHODS = ("S256",)

# RFC 7636 §4.1: 43..128 characters of the unreserved set.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# §4.2: a S256 challenge is the base64url of a 32-byte digest, 43 characters.
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


class PKCEError(ValueError):
    """The PKCE parameters break RFC 7636; the message names the rule."""


def s256(verifier: str) -> str:
    """§4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_challenge(challenge: str | None, method: str | None) -> str:
    """Validate the authorization request's PKCE pair (§4.3); returns the challenge."""
    if not challenge:
        raise PKCEError("code_challenge is required (PKCE with S256, RFC 7636)")
    # §4.3 makes "plain" the default when the method is absent; absent therefore
    # means plain, which is refused.
    if method != "S256":
        raise PKCEError(
            f"code_challenge_method {method or 'plain (the default)'!r} is not supported; use S256"
        )
    if not _CHALLENGE.match(challenge):
        raise PKCEError("code_challenge must be 43 base64url characters (a SHA-256 digest)")
    return challenge


def verify(verifier: str | None, challenge: str) -> bool:
    """§4.6: the verifier sent to the token endpoint must hash to the stored challenge."""
    if not verifier or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
