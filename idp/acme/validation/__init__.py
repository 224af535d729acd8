"""Challenge validation: http-01, dns-01 (RFC 8555 §8.3, §8.4), tls-alpn-01 (RFC 8737).

Contract the order resources call (the validation helper implements it):

    async def validate(
        challenge_type: str,          # "http-01" | "dns-01" | "tls-alpn-01"
        identifier: str,              # the DNS name, lower-case A-labels
        token: str,
        key_authorization: str,       # token "." base64url(JWK thumbprint), §8.1
        settings: AcmeSettings,
    ) -> None                         # raises ChallengeFailed

Bounded by ``settings.validation_timeout_seconds`` and a per-process limit of
``settings.validation_concurrency``; never blocks the event loop.
"""

from __future__ import annotations


class ChallengeFailed(Exception):
    """The challenge was not met; ``error`` is the ACME error type without its prefix
    (``incorrectResponse``, ``connection``, ``dns``, ``tls``, ``unauthorized``...)."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
