"""The audit log over HTTP: auditors search, export and prove; citizens see their history.

- ``GET  /v1/audit/entries`` (auditor): search; national codes hashed at query time.
- ``GET  /v1/audit/export`` (auditor): JSON lines (:mod:`idp.audit.export`).
- ``GET  /v1/audit/proofs/inclusion`` (auditor), ``/consistency`` (public): RFC 9162.
- ``GET  /v1/audit/checkpoint`` (public): the latest signed checkpoint;
  ``POST /v1/audit/checkpoints`` (auditor, admin): sign one now.
- ``GET  /v1/audit/log-key`` (public): the checkpoint-signing keys.
- ``GET  /v1/me/access-history`` (the citizen): who looked them up, newest first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from idp.audit import rfc9162, tree
from idp.audit.checkpoints import latest_checkpoint, log_origin, make_checkpoint
from idp.audit.export import export_lines
from idp.audit.history import BadCursor, citizen_history
from idp.audit.render import entry_json
from idp.audit.search import AuditQuery, record_subject_search, search, subject_hashes
from idp.audit.sequencer import read_head
from idp.audit.signing_key import published_keys
from idp.context import Hoviyat, get_hoviyat
from idp.http.auth import Caller, require_role, token_claims
from idp.http.schema import INT64_MAX, DateTimeParam
from idp.login.sessions import current_login
from idp.problems import Problem, bad_request, credentials_required, not_found, unauthorized
from idp.tracking import new_tracking_code
from verifiers.identifiers import IdentifierError, validate_national_code

router = APIRouter(tags=["audit"])
auditor = require_role("auditor")
JSON_LINES = "application/jsonl"


# Paging by the last entry shown (its id), on the auditor's search and the citizen's history.
Cursor = Annotated[
    int | None, Query(ge=0, le=INT64_MAX, description="cursor: next_cursor of the last page")
]


def _identifier_problem(error: IdentifierError) -> Problem:
    return Problem(
        422, "invalid-identifier", "Invalid identifier", error.message,
        field=error.field, rule=error.rule,
    )  # fmt: skip


def _query(
    since: DateTimeParam | None = Query(None, description="from this time, inclusive (RFC 3339)"),
    until: DateTimeParam | None = Query(None, description="before this time (RFC 3339)"),
    event_type: str | None = Query(None, max_length=40),
    client: str | None = Query(None, max_length=200, description="actor id"),
    service_code: str | None = Query(None, max_length=64),
    tracking_code: str | None = Query(None, max_length=40),
    outcome: str | None = Query(None, max_length=40),
    national_code: str | None = Query(None, max_length=40),
    national_id: str | None = Query(None, max_length=40),
    after: Cursor = None,
    limit: int = Query(100, ge=1, le=1000),
) -> AuditQuery:
    return AuditQuery(
        since=since, until=until, event_type=event_type, actor_id=client,
        service_code=service_code, tracking_code=tracking_code, outcome=outcome,
        national_code=national_code, national_id=national_id, after_id=after, limit=limit,
    )  # fmt: skip


@router.get("/v1/audit/entries")
def search_entries(
    query: AuditQuery = Depends(_query),
    caller: Caller = Depends(auditor),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:
    pepper = hoviyat.secrets.subject_pepper
    try:
        hashes = subject_hashes(pepper, query)
    except IdentifierError as error:
        raise _identifier_problem(error) from None
    tracking_code = new_tracking_code()
    with hoviyat.db.session() as session:
        entries = search(session, pepper, query)
        record_subject_search(
            session,
            hashes,
            tracking_code=tracking_code,
            actor_type="auditor",
            actor_id=caller.client_id,
            service_code=caller.service_code,
            legal_basis=caller.policy.legal_basis,
        )
    return {
        "tracking_code": tracking_code,
        "entries": [entry_json(e) for e in entries],
        "next_cursor": entries[-1].id if len(entries) == query.limit else None,
    }


@router.get("/v1/audit/export", response_class=StreamingResponse)
def export(
    filtered: bool = Query(False, description="export only entries matching the filters"),
    query: AuditQuery = Depends(_query),
    caller: Caller = Depends(auditor),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> StreamingResponse:
    try:
        subject_hashes(hoviyat.secrets.subject_pepper, query)
    except IdentifierError as error:
        raise _identifier_problem(error) from None
    lines = export_lines(
        hoviyat.db,
        key_encryption_key=hoviyat.secrets.key_encryption_key,
        pepper=hoviyat.secrets.subject_pepper,
        origin=log_origin(hoviyat.settings.issuer),
        actor_type="auditor",
        actor_id=caller.client_id,
        query=query if filtered else None,
    )
    header = next(lines)  # records the export and signs its checkpoint before answering
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    def body() -> Any:
        yield header
        yield from lines

    return StreamingResponse(
        body(),
        media_type=JSON_LINES,
        headers={"Content-Disposition": f'attachment; filename="hoviyat-audit-{stamp}.jsonl"'},
    )


@router.get("/v1/audit/proofs/inclusion")
def inclusion_proof(
    leaf_index: int = Query(..., ge=0, le=INT64_MAX),
    tree_size: int | None = Query(
        None, ge=1, le=INT64_MAX, description="default: the latest checkpoint's"
    ),
    _caller: Caller = Depends(auditor),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:
    # Proofs are against signed tree sizes, already sequenced: a read, no head lock.
    with hoviyat.db.session() as session:
        current = read_head(session).tree_size
        size = tree_size or _latest_size(session)
        try:
            path = tree.inclusion_proof(session, leaf_index, size, current)
            root = tree.root_hash(session, size, current)
        except rfc9162.ProofError as exc:
            raise bad_request("bad-proof-request", str(exc)) from None
        leaf = tree.leaf_hash_at(session, leaf_index)
    return {
        "leaf_index": leaf_index,
        "tree_size": size,
        "leaf_hash": leaf.hex() if leaf else None,
        "inclusion_proof": [h.hex() for h in path],
        "root_hash": root.hex(),
    }


def _latest_size(session: Session) -> int:
    latest = latest_checkpoint(session)
    if latest is None:
        raise not_found("no checkpoint has been signed yet: POST /v1/audit/checkpoints")
    return latest.tree_size


@router.get("/v1/audit/proofs/consistency")
def consistency_proof(
    first: int = Query(..., ge=1, le=INT64_MAX), second: int = Query(..., ge=1, le=INT64_MAX),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:  # fmt: skip
    with hoviyat.db.session() as session:
        current = read_head(session).tree_size
        try:
            path = tree.consistency_proof(session, first, second, current)
            roots = [tree.root_hash(session, size, current).hex() for size in (first, second)]
        except rfc9162.ProofError as exc:
            raise bad_request("bad-proof-request", str(exc)) from None
    return {
        "first": first,
        "second": second,
        "first_root_hash": roots[0],
        "second_root_hash": roots[1],
        "consistency_proof": [h.hex() for h in path],
    }


@router.get("/v1/audit/checkpoint")
def get_checkpoint(hoviyat: Hoviyat = Depends(get_hoviyat)) -> dict[str, Any]:
    with hoviyat.db.session() as session:
        latest = latest_checkpoint(session)
    if latest is None:
        raise not_found("no checkpoint has been signed yet")
    return latest.to_json()


@router.post("/v1/audit/checkpoints", status_code=201)
def sign_checkpoint(
    _caller: Caller = Depends(require_role("auditor", "admin")),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:
    record = make_checkpoint(
        hoviyat.db, hoviyat.secrets.key_encryption_key, log_origin(hoviyat.settings.issuer)
    )
    return record.to_json()


@router.get("/v1/audit/log-key")
def log_key(hoviyat: Hoviyat = Depends(get_hoviyat)) -> dict[str, Any]:
    with hoviyat.db.session() as session:
        keys = published_keys(session)
    return {
        "origin": log_origin(hoviyat.settings.issuer),
        "keys": [
            {
                "key_id": k.key_id,
                "public_key_pem": k.public_key_pem,
                "certificate_chain_pem": k.certificate_chain_pem,
            }
            for k in keys
        ],
    }


def citizen_national_code(request: Request, hoviyat: Hoviyat = Depends(get_hoviyat)) -> str:
    """The person asking for their own history.

    The citizen's own Hoviyat login (the session cookie of the OpenID Connect
    login pages) names them; so does an access token Hoviyat minted for the
    person, with a ``national_code`` claim (a citizen app of Hoviyat's own).
    An agency's OIDC access token is not enough on purpose: it would let one
    agency read which other agencies looked the person up.
    """
    with hoviyat.db.session() as session:
        login = current_login(request, session)
    if login is not None:
        return login.national_code
    if not request.headers.get("authorization"):
        raise credentials_required("log in at Hoviyat, or send a citizen access token")
    national_code = token_claims(request, hoviyat).get("national_code")
    if isinstance(national_code, str):
        try:
            return validate_national_code(national_code)
        except IdentifierError:
            raise unauthorized("the access token names no valid person") from None
    raise unauthorized("access history needs the citizen's own login, not a client's token")


@router.get("/v1/me/access-history")
def access_history(
    limit: int = Query(50, ge=1, le=200),
    before: Cursor = None,
    national_code: str = Depends(citizen_national_code),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:
    with hoviyat.db.session() as session:
        try:
            page = citizen_history(
                session,
                pepper=hoviyat.secrets.subject_pepper,
                policies=hoviyat.policies,
                national_code=national_code,
                limit=limit,
                before=before,
            )
        except BadCursor as exc:
            raise bad_request("bad-cursor", str(exc)) from None
    return {"entries": page.items, "next_cursor": page.next_cursor}
