"""A citizen's passkey for the counter tests: a software authenticator and its stored record.

The authenticator is written with ``cryptography``: an ES256 key, authenticator
data built byte by byte as WebAuthn §6.1 lays it out, client data as §5.8.1.
It can be made to lie (no user verification, an old counter), which is how
attacks are played. The passkey's record is written to storage as the
citizen's own registration would (registration is tested with the login);
it is the state a test starts from.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import struct
from datetime import UTC, datetime
from typing import Any

from counter_support import Someone, csrf_of, key_of
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from webauthn.helpers import encode_cbor

from idp.storage import passkeys
from idp.storage.passkeys import Passkey

UP, UV = 0x01, 0x04


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftPasskey:
    """One credential on a platform authenticator that verifies its user, honest by default."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.rp_id = origin.split("://", 1)[1].split(":")[0]
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        # RFC 9053 §7.1.1: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
        return encode_cbor(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def get(
        self, options: dict[str, Any], *, flags: int = UP | UV, count: int | None = None
    ) -> str:
        """An assertion (§6.3.3) over ``options``' challenge, as the browser would post it."""
        self.sign_count = self.sign_count + 1 if count is None else count
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        auth_data = rp_hash + bytes([flags]) + struct.pack(">I", self.sign_count)
        client_data = json.dumps(
            {"type": "webauthn.get", "challenge": options["challenge"], "origin": self.origin}
        ).encode()
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": None,
                },
                "clientExtensionResults": {},
            }
        )


def register_passkey(app: FastAPI, someone: Someone) -> SoftPasskey:
    """A passkey bound to ``someone``, as their own registration at the login stores it."""
    authenticator = SoftPasskey(app.state.hoviyat.settings.issuer)
    with app.state.hoviyat.db.session() as db:
        added = passkeys.add(
            db,
            Passkey(
                credential_id=b64url(authenticator.credential_id),
                person_hash=key_of(app, someone),
                public_key=authenticator.cose_key(),
                sign_count=0,
                aaguid="00000000-0000-0000-0000-000000000000",
                transports=["internal"],
                created_at=datetime.now(UTC),
                last_used_at=None,
            ),
        )
    assert added
    return authenticator


def csrf_on(browser: TestClient, session_id: str) -> str:
    return csrf_of(browser, f"/console/counter/sessions/{session_id}")


def ask_link(browser: TestClient, session_id: str, csrf: str | None = None) -> Response:
    """The clerk asks for a QR code for the citizen's phone (the session page with it)."""
    return browser.post(
        f"/console/counter/sessions/{session_id}/link",
        data={"csrf_token": csrf if csrf is not None else csrf_on(browser, session_id)},
    )


def url_on(page: str) -> str:
    """The confirmation URL the clerk's page shows as text (as typed: with dashes)."""
    found = re.search(r'<bdi dir="ltr" id="confirm-url">(.*?)</bdi>', page)
    assert found is not None, page
    return found.group(1).replace("<wbr>", "")


def token_on(page: str) -> str:
    """The confirmation token in the URL the clerk's page shows."""
    found = re.fullmatch(r".*/counter/confirm/([a-z2-7-]+)", url_on(page))
    assert found is not None, page
    return found.group(1).replace("-", "")


def link_for(browser: TestClient, session_id: str) -> str:
    answer = ask_link(browser, session_id)
    assert answer.status_code == 200, answer.text
    return token_on(answer.text)


def phone(app: FastAPI) -> TestClient:
    """The citizen's own phone: another browser, with no console cookie."""
    return TestClient(app, base_url=app.state.hoviyat.settings.issuer, follow_redirects=False)


def confirm_options(client: TestClient, token: str) -> Response:
    return client.post(f"/counter/confirm/{token}/options")


def options_on_phone(client: TestClient, token: str) -> dict[str, Any]:
    answer = confirm_options(client, token)
    assert answer.status_code == 200, answer.text
    options: dict[str, Any] = answer.json()
    return options


def post_confirm(client: TestClient, token: str, credential: str) -> Response:
    return client.post(f"/counter/confirm/{token}/passkey", data={"credential": credential})


def not_me(client: TestClient, token: str, lang: str = "fa") -> Response:
    return client.post(f"/counter/confirm/{token}/not-me?lang={lang}")
