"""The ACME resource URLs under ``/acme/<issuing-ca>/`` (RFC 8555 §7.1).

One place builds them, so the directory, the ``Location`` headers and the
``url`` checked in every JWS (§6.4) cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "/acme/{ca}"


@dataclass(frozen=True)
class AcmePaths:
    """Absolute URLs of one issuing CA's ACME server, under the public ``issuer`` base."""

    base: str  # Settings.issuer, no trailing slash
    ca: str

    def _url(self, tail: str) -> str:
        return f"{self.base.rstrip('/')}/acme/{self.ca}/{tail}"

    @property
    def directory(self) -> str:
        return self._url("directory")

    @property
    def new_nonce(self) -> str:
        return self._url("new-nonce")

    @property
    def new_account(self) -> str:
        return self._url("new-account")

    @property
    def new_order(self) -> str:
        return self._url("new-order")

    @property
    def revoke_cert(self) -> str:
        return self._url("revoke-cert")

    @property
    def key_change(self) -> str:
        return self._url("key-change")

    @property
    def renewal_info(self) -> str:
        return self._url("renewal-info")

    def account(self, account_id: str) -> str:
        return self._url(f"account/{account_id}")

    def account_orders(self, account_id: str) -> str:
        return self._url(f"account/{account_id}/orders")

    def order(self, order_id: str) -> str:
        return self._url(f"order/{order_id}")

    def finalize(self, order_id: str) -> str:
        return self._url(f"order/{order_id}/finalize")

    def authorization(self, authz_id: str) -> str:
        return self._url(f"authz/{authz_id}")

    def challenge(self, challenge_id: str) -> str:
        return self._url(f"challenge/{challenge_id}")

    def certificate(self, certificate_id: str) -> str:
        return self._url(f"certificate/{certificate_id}")
