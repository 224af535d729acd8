"""ACME accounts (RFC 8555 §7.3): creation with EAB, update, deactivation, key rollover.

Functions of a verified :class:`idp.acme.requests.AcmePost`; each state change
is one write through the group committer, with its audit entry naming the
legal entity (by subject hash) in the same transaction. The database decides
the races: one account per key (unique thumbprint), one per EAB key
(conditional bind), one status change per request (``WHERE status``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp import randomness
from idp.acme import eab, rfc8555_jws
from idp.acme.paths import AcmePaths
from idp.acme.problems import AcmeProblem, malformed, unauthorized
from idp.acme.requests import AcmePost
from idp.acme.server import AcmeServer
from idp.audit.log import AuditEvent, append, subject_hash
from idp.storage import acme_accounts, acme_eab
from idp.storage.acme_accounts import AcmeAccountRow
from idp.tracking import new_tracking_code

EVENT_TYPE = "acme_account"
MAX_CONTACTS = 4
MAX_CONTACT_LENGTH = 254
# RFC 5321 §4.1.2 addr-spec, the dot-atom form only: no quoted local parts,
# no comments, no address literals, no hfields (§7.3: "mailto" URLs with one address).
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)


@dataclass(frozen=True)
class Answer:
    """What an account resource answers: the account object, status, Location."""

    body: dict[str, Any]
    status: int
    location: str


class _KeyTaken(Exception):
    """The account key got an account meanwhile (a concurrent newAccount)."""


def contacts(value: object) -> list[str]:
    """The ``contact`` list (§7.3): ``mailto:`` URLs of one plain address each, bounded."""
    if not isinstance(value, list):
        raise malformed("contact must be an array of URLs")
    if len(value) > MAX_CONTACTS:
        raise AcmeProblem("invalidContact", f"at most {MAX_CONTACTS} contacts")
    result: list[str] = []
    for item in value:
        if not isinstance(item, str) or len(item) > MAX_CONTACT_LENGTH:
            raise AcmeProblem("invalidContact", "a contact is not a short string")
        if not item.startswith("mailto:"):
            raise AcmeProblem("unsupportedContact", "only mailto: contacts are supported")
        if not _EMAIL.fullmatch(item[len("mailto:") :]):
            raise AcmeProblem("invalidContact", "a contact is not one plain email address")
        if item not in result:
            result.append(item)
    return result


def account_json(row: AcmeAccountRow, paths: AcmePaths) -> dict[str, Any]:
    """The account object (§7.1.2)."""
    return {
        "status": row.status,
        "contact": list(row.contact),
        "termsOfServiceAgreed": row.terms_agreed,
        "orders": paths.account_orders(row.id),
        "key": row.jwk,
        "createdAt": row.created_at.isoformat().replace("+00:00", "Z"),
    }


def account_event(
    server: AcmeServer, row: AcmeAccountRow, operation: str, **detail: Any
) -> AuditEvent:
    """The audit entry of an account's change, naming its legal entity and service."""
    policy = server.hoviyat.policies.get(row.service_code)
    return AuditEvent(
        tracking_code=new_tracking_code(),
        event_type=EVENT_TYPE,
        actor_type="acme-account",
        actor_id=row.id,
        service_code=row.service_code,
        legal_basis=policy.legal_basis if policy else None,
        operation=operation,
        subject_hash=subject_hash(server.hoviyat.secrets.subject_pepper, row.national_id),
        outcome="ok",
        detail={"account_id": row.id, "ca": row.ca, "eab_kid": row.eab_key_id, **detail},
    )


async def _read(server: AcmeServer, read: Any) -> Any:
    def run() -> Any:
        with server.hoviyat.db.read() as session:
            return read(session)

    return await run_in_threadpool(run)


def _existing(server: AcmeServer, post: AcmePost, row: AcmeAccountRow) -> Answer:
    if row.ca != post.paths.ca:
        raise unauthorized("this key holds an account of another CA's ACME server")
    if row.status != "valid":
        # §7.3.6: no further request authorized by a deactivated account's key.
        raise unauthorized(f"the account of this key is {row.status}")
    return Answer(account_json(row, post.paths), 200, post.paths.account(row.id))


async def new_account(server: AcmeServer, post: AcmePost) -> Answer:
    """newAccount (§7.3): the existing account of the key, or a new one bound by EAB."""
    if post.jwk is None:
        raise malformed("newAccount is signed with the account key's jwk, not a kid (§6.2)")
    if post.payload is None:
        raise malformed("newAccount takes a payload, not POST-as-GET")
    payload = post.payload
    key = rfc8555_jws.public_key(post.jwk, str(post.protected["alg"]))
    thumbprint = rfc8555_jws.thumbprint(key)
    existing = await _read(server, lambda s: acme_accounts.by_thumbprint(s, thumbprint))
    if existing is not None:
        return _existing(server, post, existing)
    if payload.get("onlyReturnExisting") is True:
        raise AcmeProblem("accountDoesNotExist", "no account has this key")
    terms = payload.get("termsOfServiceAgreed", False)
    if not isinstance(terms, bool):
        raise malformed("termsOfServiceAgreed must be a boolean")
    contact = contacts(payload.get("contact", []))
    binding = eab.parse_binding(payload.get("externalAccountBinding"), post.paths, thumbprint)
    account_id = randomness.token_urlsafe(16)  # an identifier in URLs, not a secret
    public_jwk = key.as_dict(private=False)
    secrets_ = server.hoviyat.secrets

    def write(session: Session) -> AcmeAccountRow:
        eab_row = eab.verify_binding(session, secrets_, binding)
        now = datetime.now(UTC)
        if not acme_eab.bind(session, eab_row.kid, account_id, now):
            raise unauthorized("this external account binding key has an account already")
        row = AcmeAccountRow(
            id=account_id,
            ca=post.paths.ca,
            status="valid",
            jwk=public_jwk,
            jwk_thumbprint=thumbprint,
            contact=contact,
            terms_agreed=terms,
            eab_key_id=eab_row.kid,
            national_id=eab_row.national_id,
            service_code=eab_row.service_code,
            created_at=now,
            updated_at=now,
        )
        if not acme_accounts.insert(session, row):
            raise _KeyTaken
        append(session, account_event(server, row, "create"))
        return row

    try:
        row = await server.hoviyat.committer.run(write)
    except _KeyTaken:
        # Another request registered this key a moment ago: that account is the answer.
        raced = await _read(server, lambda s: acme_accounts.by_thumbprint(s, thumbprint))
        if raced is None:
            raise AcmeProblem("serverInternal", "the account could not be created", 500) from None
        return _existing(server, post, raced)
    return Answer(account_json(row, post.paths), 201, post.paths.account(row.id))


async def update_account(server: AcmeServer, post: AcmePost, account_id: str) -> Answer:
    """POST to the account URL (§7.3.2, §7.3.6): read, update contacts, or deactivate."""
    account = post.account
    if account is None or account.id != account_id:
        raise unauthorized("an account may only be read or changed by its own key")
    paths = post.paths
    payload = post.payload or {}
    status = payload.get("status")
    if status is not None and status != "deactivated":
        raise malformed("an account's status can only be changed to deactivated (§7.3.6)")
    if "contact" in payload:
        contact = contacts(payload["contact"])
    if status is None and "contact" not in payload:
        row = await _read(server, lambda s: acme_accounts.get(s, account_id))
        return Answer(account_json(row, paths), 200, paths.account(account_id))

    def write(session: Session) -> AcmeAccountRow:
        now = datetime.now(UTC)
        row = acme_accounts.get(session, account_id)
        if row is None:
            raise AcmeProblem("accountDoesNotExist", "no such account")
        if "contact" in payload and row.contact != contact:
            if not acme_accounts.set_contact(session, account_id, contact, now):
                raise unauthorized("the account is no longer valid")
            append(session, account_event(server, row, "update_contact"))
        if status == "deactivated":
            if not acme_accounts.set_status(session, account_id, "valid", "deactivated", now):
                raise unauthorized("the account is no longer valid")
            append(session, account_event(server, row, "deactivate"))
        session.refresh(row)
        return row

    row = await server.hoviyat.committer.run(write)
    return Answer(account_json(row, paths), 200, paths.account(account_id))


async def change_key(server: AcmeServer, post: AcmePost) -> Answer:
    """Account key rollover (§7.3.5): an inner JWS by the new key over {account, oldKey}."""
    account = post.account
    if account is None:
        raise malformed("key-change is signed with the account's kid")
    if post.payload is None:
        raise malformed("key-change takes the inner JWS as its payload")
    inner = rfc8555_jws.parse(post.raw_payload, require_nonce=False)
    if inner.jwk is None:
        raise malformed("the inner JWS must carry the new key as jwk (§7.3.5)")
    if inner.url != post.url:
        raise malformed("the inner JWS's url must be the outer one's (§7.3.5)")
    new_key = rfc8555_jws.public_key(inner.jwk, inner.alg)
    rfc8555_jws.verify(inner, new_key)
    request = rfc8555_jws.json_object(inner.payload, "the inner payload")
    paths = post.paths
    if request.get("account") != paths.account(account.id):
        raise malformed("the inner payload's account is not the signer's account URL")
    if eab.jwk_thumbprint(request.get("oldKey")) != account.jwk_thumbprint:
        raise unauthorized("oldKey is not the account's current key")
    new_thumbprint = rfc8555_jws.thumbprint(new_key)
    if new_thumbprint == account.jwk_thumbprint:
        raise malformed("the new key is the account's current key")
    holder = await _read(server, lambda s: acme_accounts.by_thumbprint(s, new_thumbprint))
    if holder is not None:
        raise _conflict(paths, holder)
    new_jwk = new_key.as_dict(private=False)

    def write(session: Session) -> AcmeAccountRow:
        now = datetime.now(UTC)
        changed = acme_accounts.change_key(
            session, account.id, account.jwk_thumbprint, new_jwk, new_thumbprint, now
        )
        if changed is None:
            raise AcmeProblem("conflict", "the new key belongs to another account", 409)
        if not changed:
            raise unauthorized("the account's key or status changed meanwhile")
        row = acme_accounts.get(session, account.id)
        assert row is not None
        session.refresh(row)
        append(
            session,
            account_event(
                server,
                row,
                "key_change",
                old_thumbprint=account.jwk_thumbprint,
                new_thumbprint=new_thumbprint,
            ),
        )
        return row

    row = await server.hoviyat.committer.run(write)
    return Answer(account_json(row, paths), 200, paths.account(account.id))


def _conflict(paths: AcmePaths, holder: AcmeAccountRow) -> AcmeProblem:
    location = AcmePaths(paths.base, holder.ca).account(holder.id)
    return AcmeProblem(
        "conflict", "the new key belongs to another account", 409, headers={"Location": location}
    )
