"""The authenticated POST every ACME resource but the directory and newNonce takes.

:func:`acme_post` (``kid`` requests) and :func:`acme_post_with_jwk` (``jwk`` or
``kid``: newAccount, revokeCert) check, in this order (RFC 8555 §6.2-6.5):
``Content-Type: application/jose+json``; a bounded body; the flattened JWS's
form and algorithm; ``url`` equal to the URL this resource has under the
public base (``Settings.issuer``; behind a proxy the request's own URL is not
trusted); the nonce's MAC and expiry; the key (``jwk``, or the account ``kid``
names, which must be an account URL of this CA); the signature; then the
nonce is spent in the database (a replay fails on any worker or host) and
the account must be valid. Only then is the payload parsed.

Route handlers call them with the Request and their ``ca`` path parameter::

    post = await acme_post(request, ca)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from idp.acme import nonces, rfc8555_jws
from idp.acme.paths import AcmePaths
from idp.acme.problems import AcmeProblem, malformed, unauthorized
from idp.acme.responses import route_path
from idp.acme.server import AcmeServer, acme_server
from idp.storage import acme_accounts
from idp.storage.acme_accounts import AcmeAccountRow

JOSE_JSON = "application/jose+json"
# A JWS holding a CSR of an RSA 8192 key is under 8 KiB; this leaves room and bounds work.
MAX_BODY_BYTES = 64 * 1024
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class AcmeAccount:
    """An ACME account as the resources see it."""

    id: str
    status: str  # "valid" | "deactivated" | "revoked"
    jwk_thumbprint: str  # RFC 7638, base64url SHA-256
    national_id: str  # the legal entity the EAB key bound it to
    service_code: str  # that entity's service policy
    eab_key_id: str


@dataclass(frozen=True)
class AcmePost:
    """One verified request: signature, nonce (spent), ``url`` all checked (§6.2-6.5)."""

    paths: AcmePaths
    url: str
    payload: dict[str, Any] | None  # None: POST-as-GET (§6.3)
    raw_payload: bytes
    protected: dict[str, Any]
    # Exactly one of the two (§6.2): a ``kid`` request resolves its account;
    # a ``jwk`` request (newAccount, revokeCert by certificate key) carries the key.
    account: AcmeAccount | None
    jwk: dict[str, Any] | None


def account_of(row: AcmeAccountRow) -> AcmeAccount:
    return AcmeAccount(
        id=row.id,
        status=row.status,
        jwk_thumbprint=row.jwk_thumbprint,
        national_id=row.national_id,
        service_code=row.service_code,
        eab_key_id=row.eab_key_id,
    )


async def acme_post(request: Request, ca: str) -> AcmePost:
    """Verify the flattened JWS of ``request`` for the CA named ``ca``; it must use ``kid``.

    Raises :class:`idp.acme.problems.AcmeProblem` (badNonce, malformed,
    unauthorized, accountDoesNotExist, badSignatureAlgorithm...) on any failure.
    """
    return await _verified(request, ca, allow_jwk=False)


async def acme_post_with_jwk(request: Request, ca: str) -> AcmePost:
    """As :func:`acme_post`, for the resources that take ``jwk`` (newAccount, revokeCert).

    Either header is accepted (revokeCert takes both, §7.6); ``post.account`` is
    set for ``kid`` and ``post.jwk`` for ``jwk``. newAccount insists on ``jwk`` itself.
    """
    return await _verified(request, ca, allow_jwk=True)


async def read_body(request: Request) -> bytes:
    """The JWS body, refused past :data:`MAX_BODY_BYTES` without reading further."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JOSE_JSON:
        raise malformed(f"send the JWS as {JOSE_JSON} (§6.2)", 415)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise malformed(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise malformed(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    return bytes(body)


def expected_url(request: Request, paths: AcmePaths) -> str:
    """This resource's URL under the public base (§6.4): never the Host the request named."""
    url = paths.base.rstrip("/") + route_path(request)
    query = request.url.query
    return f"{url}?{query}" if query else url


async def _verified(request: Request, ca: str, *, allow_jwk: bool) -> AcmePost:
    server = acme_server(request)
    paths = server.paths(ca)
    parsed = rfc8555_jws.parse(await read_body(request))
    url = expected_url(request, paths)
    if parsed.url != url:
        raise unauthorized("the JWS url is not the URL of this resource (§6.4.1)")
    nonce = server.nonces.check(parsed.nonce)
    account: AcmeAccount | None = None
    if parsed.jwk is not None:
        if not allow_jwk:
            raise malformed("this resource takes a kid, not a jwk (§6.2)")
        key = rfc8555_jws.public_key(parsed.jwk, parsed.alg)
    else:
        row = await _account_row(server, paths, str(parsed.kid))
        key = rfc8555_jws.public_key(row.jwk, parsed.alg)
        account = account_of(row)
    rfc8555_jws.verify(parsed, key)
    await server.hoviyat.committer.run(lambda session: nonces.spend(session, nonce))
    if account is not None and account.status != "valid":
        # §7.3.6: a deactivated account's requests are refused; so are a revoked one's.
        raise unauthorized(f"the account is {account.status}")
    payload: dict[str, Any] | None = None
    if parsed.payload_b64 != "":
        payload = rfc8555_jws.json_object(parsed.payload, "the payload")
    return AcmePost(
        paths=paths,
        url=url,
        payload=payload,
        raw_payload=parsed.payload,
        protected=parsed.protected,
        account=account,
        jwk=parsed.jwk,
    )


def account_id_of(paths: AcmePaths, kid: str) -> str | None:
    """The account id in ``kid`` if it is an account URL of this CA (§6.2), else None."""
    prefix = paths.account("")
    if not kid.startswith(prefix):
        return None
    account_id = kid[len(prefix) :]
    return account_id if _ACCOUNT_ID.fullmatch(account_id) else None


async def _account_row(server: AcmeServer, paths: AcmePaths, kid: str) -> AcmeAccountRow:
    account_id = account_id_of(paths, kid)
    if account_id is None:
        raise AcmeProblem("accountDoesNotExist", "kid is not an account URL of this ACME server")

    def load() -> AcmeAccountRow | None:
        with server.hoviyat.db.read() as session:
            return acme_accounts.get(session, account_id)

    row = await run_in_threadpool(load)
    if row is None or row.ca != paths.ca:
        raise AcmeProblem("accountDoesNotExist", "no account has this kid")
    return row
