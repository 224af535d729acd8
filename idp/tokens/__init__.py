"""Token signing: the one module of ``idp`` that touches signing keys (see design notes)."""

from idp.tokens.keyring import SIGNING_ALGORITHMS, KeyRing, TokenError

__all__ = ["SIGNING_ALGORITHMS", "KeyRing", "TokenError"]
