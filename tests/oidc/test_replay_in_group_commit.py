"""A code replay inside a group-commit batch: the revocation sticks, the neighbours' writes too."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc_support import (
    RelyingParty,
    authorization_params,
    code_for,
    exchange,
    log_in,
    pkce_pair,
)
from sqlmodel import Session, select

from idp.audit.log import AuditEvent, append
from idp.oauth.client_auth import AuthenticatedClient
from idp.oauth.errors import OAuthError
from idp.oauth.grants.authorization_code import authorization_code_grant
from idp.storage.models import AuditEntry, Client
from idp.storage.oidc import OidcGrant
from verifiers.registry.base import Person


def test_replay_revocation_and_batch_neighbours_all_commit(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    hoviyat = hoviyat_app.state.hoviyat
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    assert exchange(asgi_browser, rp, code, verifier).status_code == 200
    with hoviyat.db.read() as session:
        client = session.get(Client, rp.client_id)
    assert client is not None
    form = {"code": code, "redirect_uri": rp.redirect_uri, "code_verifier": verifier}

    def neighbour(tracking_code: str):  # type: ignore[no-untyped-def]
        def write(session: Session) -> None:
            append(session, AuditEvent(tracking_code, "test", "test", "ok"))

        return write

    def slow(session: Session) -> None:
        time.sleep(0.3)  # holds the writer so the next three queue into one batch

    def replay(session: Session) -> dict:
        return authorization_code_grant(
            form, AuthenticatedClient(client, "client_secret_basic"), hoviyat, session
        )

    first = hoviyat.committer.submit(slow)
    before = hoviyat.committer.submit(neighbour("BEFORE"))
    replayed = hoviyat.committer.submit(replay)
    after = hoviyat.committer.submit(neighbour("AFTER"))
    first.result(timeout=30)
    before.result(timeout=30)
    after.result(timeout=30)
    with pytest.raises(OAuthError) as refused:
        replayed.result(timeout=30)
    assert refused.value.error == "invalid_grant"
    with hoviyat.db.read() as session:
        codes = {e.tracking_code for e in session.exec(select(AuditEntry))}
        grants = session.exec(select(OidcGrant)).all()
    assert {"BEFORE", "AFTER"} <= codes
    assert [grant.revoked_reason for grant in grants] == ["code_replay"]
