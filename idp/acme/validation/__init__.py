"""Challenge validation: http-01, dns-01 (RFC 8555 §8.3, §8.4), tls-alpn-01 (RFC 8737).

Contract the order resources call:

    async def validate(
        challenge_type: str,          # "http-01" | "dns-01" | "tls-alpn-01"
        identifier: str,              # the DNS name, lower-case A-labels
        token: str,
        key_authorization: str,       # token "." base64url(JWK thumbprint), §8.1
        settings: AcmeSettings,
    ) -> None                         # raises ChallengeFailed

One module a method (:mod:`.http01`, :mod:`.dns01`, :mod:`.tls_alpn01`), the
lookups in :mod:`.resolver`, the connections in :mod:`.dialing`. Every
validation is bounded by ``settings.validation_timeout_seconds``, and at most
``settings.validation_concurrency`` run at once in a process. Waiting for a
place is bounded by the same deadline: past it the challenge fails as
``serverInternal`` (the validator is overloaded) rather than queueing for ever,
so one validation takes at most twice the deadline from call to answer. All of
it is asyncio I/O: nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from idp.acme.validation.dns01 import validate_dns01
from idp.acme.validation.failure import ChallengeFailed
from idp.acme.validation.http01 import validate_http01
from idp.acme.validation.tls_alpn01 import validate_tls_alpn01

if TYPE_CHECKING:
    from idp.acme.settings import AcmeSettings

__all__ = ["ChallengeFailed", "validate"]

Validator = Callable[[str, str, str, "AcmeSettings"], Awaitable[None]]

VALIDATORS: dict[str, Validator] = {
    "http-01": validate_http01,
    "dns-01": validate_dns01,
    "tls-alpn-01": validate_tls_alpn01,
}

# asyncio.Semaphore binds to the loop that first waits on it, so one per loop
# (a process has one loop in service; tests start a loop a test), and one per
# limit: services in one process configured alike share their places. Keyed
# weakly: a closed loop's semaphores go with it.
_LIMITS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _limit(size: int) -> asyncio.Semaphore:
    per_loop = _LIMITS.setdefault(asyncio.get_running_loop(), {})
    semaphore = per_loop.get(size)
    if semaphore is None:
        semaphore = per_loop[size] = asyncio.Semaphore(size)
    return semaphore


async def validate(
    challenge_type: str,
    identifier: str,
    token: str,
    key_authorization: str,
    settings: AcmeSettings,
) -> None:
    """Check one challenge; return if it is met, raise :class:`ChallengeFailed` if not."""
    validator = VALIDATORS.get(challenge_type)
    if validator is None:
        raise ChallengeFailed("malformed", f"unknown challenge type {challenge_type[:32]!r}")
    deadline = settings.validation_timeout_seconds
    limit = _limit(settings.validation_concurrency)
    try:
        async with asyncio.timeout(deadline):
            await limit.acquire()
    except TimeoutError:
        raise ChallengeFailed(
            "serverInternal",
            f"{settings.validation_concurrency} validations already in progress; try again later",
        ) from None
    try:
        async with asyncio.timeout(deadline):
            await validator(identifier, token, key_authorization, settings)
    except TimeoutError:
        error = "dns" if challenge_type == "dns-01" else "connection"
        raise ChallengeFailed(error, f"{identifier}: no answer within {deadline:g} s") from None
    finally:
        limit.release()
