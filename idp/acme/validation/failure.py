"""The one way a validator says no: an ACME error type and a detail for the client."""

from __future__ import annotations


class ChallengeFailed(Exception):
    """The challenge was not met; ``error`` is the ACME error type without its prefix
    (``incorrectResponse``, ``connection``, ``dns``, ``tls``, ``unauthorized``...).

    ``detail`` goes to the ACME client: it names what was wrong, never what the
    dialled server said (a validation must not become a way to read internal pages).
    """

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
