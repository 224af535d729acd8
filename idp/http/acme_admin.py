"""Admin API for ACME external account binding keys: what ``hoviyat acme eab`` does, over HTTP.

Only a client holding the ``admin`` role may call it. A new key's HMAC key is
in the creation answer and nowhere else; every creation and revocation
writes an ``acme_eab_key`` audit entry naming the entity, in the same
transaction.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp.acme import eab
from idp.audit.log import append
from idp.context import Hoviyat, get_hoviyat
from idp.http.auth import Caller, require_role
from idp.http.schema import StrictModel
from idp.problems import Problem, not_found, service_unavailable
from idp.storage import acme_eab
from verifiers.registry import RegistryUnavailable

router = APIRouter(prefix="/v1/acme/eab-keys", tags=["administration"])
require_admin = require_role("admin")


class EabKeyRequest(StrictModel):
    national_id: str = Field(min_length=1, max_length=32)
    service_code: str = Field(min_length=1, max_length=64)


def _invalid(error: Exception) -> Problem:
    return Problem(422, "invalid-eab-key-request", "Invalid EAB key request", str(error))


@router.post("", status_code=201)
async def create(
    body: EabKeyRequest,
    caller: Caller = Depends(require_admin),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> JSONResponse:
    """A key for a registered legal entity and a service policy; its HMAC key is shown once."""
    try:
        # In a worker thread: the deeds registry may be a remote service.
        national_id = await run_in_threadpool(
            eab.check_request,
            hoviyat.registries,
            hoviyat.policies,
            body.national_id,
            body.service_code,
        )
    except eab.EabError as error:
        raise _invalid(error) from None
    except RegistryUnavailable as error:
        raise service_unavailable(f"the deeds registry cannot answer now: {error}") from None

    def write(session: Session) -> dict[str, Any]:
        created, row = eab.create(
            session,
            hoviyat.secrets,
            national_id=national_id,
            service_code=body.service_code,
            created_by=f"client:{caller.client_id}",
        )
        event = eab.key_event(
            hoviyat.secrets,
            hoviyat.policies,
            row,
            "create",
            actor_type="administrator",
            actor_id=caller.client_id,
        )
        append(session, event)
        return created.to_json()

    answer = await hoviyat.committer.run(write)
    return JSONResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("")
def list_all(
    _caller: Caller = Depends(require_admin), hoviyat: Hoviyat = Depends(get_hoviyat)
) -> list[dict[str, Any]]:
    """Every key, never its HMAC key."""
    with hoviyat.db.read() as session:
        return [eab.summary(row) for row in acme_eab.list_all(session)]


@router.delete("/{kid}")
async def revoke(
    kid: str,
    caller: Caller = Depends(require_admin),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:
    """Revoke a key; the account it bound, if any, is revoked with it."""

    def write(session: Session) -> dict[str, Any]:
        if acme_eab.get(session, kid) is None:
            raise not_found(f"no EAB key {kid!r}")
        try:
            row, account_id = eab.revoke(session, kid)
        except eab.EabError as error:
            raise Problem(409, "eab-key-revoked", "Already revoked", str(error)) from None
        event = eab.key_event(
            hoviyat.secrets,
            hoviyat.policies,
            row,
            "revoke",
            actor_type="administrator",
            actor_id=caller.client_id,
            detail={"account_id": account_id},
        )
        append(session, event)
        return {"kid": kid, "status": "revoked", "account_revoked": account_id}

    answer: dict[str, Any] = await hoviyat.committer.run(write)
    return answer
