"""Purpose-bound keys for the login pages, derived from the server's subject pepper.

HMAC-SHA256(pepper, label) gives each use (CSRF tokens, one-time code digests)
its own key, so a value made for one purpose never verifies for another, and
no new secret has to be distributed to the workers.
"""

from __future__ import annotations

import hashlib
import hmac

from idp.secrets import ServerSecrets

CSRF = b"hoviyat/login/csrf/v1"
OTP = b"hoviyat/login/otp/v1"
WEBAUTHN_USER = b"hoviyat/login/webauthn-user/v1"


def derived_key(secrets: ServerSecrets, label: bytes) -> bytes:
    return hmac.new(secrets.subject_pepper, label, hashlib.sha256).digest()
