"""A small real ACME client (RFC 8555) for tests and benchmarks: httpx and joserfc.

It fetches the directory, keeps the ``Replay-Nonce`` of each answer for the
next request (and retries once on ``badNonce``, as certbot and lego do),
creates an account with external account binding (§7.3.4), signs ``kid``
requests, POST-as-GET (§6.3), and rolls its key over (§7.3.5). Account keys:
ES256, ES384, RS256, EdDSA.

It imports nothing from pytest or ``tests``: ``bench/`` loads it by file path.
Low-level helpers (:meth:`AcmeClient.sign`, :meth:`AcmeClient.send`) take
overrides so attack tests can build exactly the wrong request they need.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwk
from joserfc.jws import JWSRegistry

JOSE_JSON = "application/jose+json"
ACME_ERROR = "urn:ietf:params:acme:error:"
_REGISTRY = JWSRegistry(algorithms=["ES256", "ES384", "RS256", "EdDSA"])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # joserfc: "EdDSA" is deprecated by RFC 9864
    _ALGORITHMS = {name: _REGISTRY.get_alg(name) for name in ("ES256", "ES384", "RS256", "EdDSA")}
_GENERATE = {
    "ES256": lambda: jwk.ECKey.generate_key("P-256"),
    "ES384": lambda: jwk.ECKey.generate_key("P-384"),
    "RS256": lambda: jwk.RSAKey.generate_key(2048),
    "EdDSA": lambda: jwk.OKPKey.generate_key("Ed25519"),
}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class AccountKey:
    """An account key and the JWS algorithm it signs with."""

    alg: str
    key: Any  # joserfc ECKey | RSAKey | OKPKey

    @classmethod
    def generate(cls, alg: str = "ES256") -> AccountKey:
        return cls(alg, _GENERATE[alg]())

    @property
    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    @property
    def thumbprint(self) -> str:
        return str(self.key.thumbprint())


def sign_jws(
    key: AccountKey | None,
    protected: dict[str, Any] | bytes,
    payload: bytes,
    *,
    mac_key: bytes | None = None,
) -> dict[str, str]:
    """A flattened JWS (RFC 7515 §7.2.2) over ``payload`` with header ``protected``
    (a dict, or the exact header bytes to sign); with ``mac_key``, HS256 (the EAB's)."""
    raw = protected if isinstance(protected, bytes) else json.dumps(protected).encode()
    protected_b64 = b64url(raw)
    payload_b64 = b64url(payload)
    signing_input = f"{protected_b64}.{payload_b64}".encode()
    if mac_key is not None:
        signature = hmac.new(mac_key, signing_input, hashlib.sha256).digest()
    else:
        assert key is not None
        signature = _ALGORITHMS[key.alg].sign(signing_input, key.key)
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64url(signature)}


@dataclass(frozen=True)
class Eab:
    """An external account binding key as the administrator hands it over."""

    kid: str
    hmac_key: str  # base64url, as certbot's --eab-hmac-key takes it
    national_id: str = ""
    service_code: str = ""


class AcmeError(Exception):
    """An ACME problem answer (§6.7)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        try:
            self.problem: dict[str, Any] = response.json()
        except ValueError:
            self.problem = {}
        self.type = str(self.problem.get("type", "")).removeprefix(ACME_ERROR)
        super().__init__(f"{response.status_code} {self.type}: {self.problem.get('detail')}")


def _payload_bytes(payload: dict[str, Any] | bytes | None) -> bytes:
    if payload is None:
        return b""  # POST-as-GET (§6.3)
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload).encode()


@dataclass
class AcmeClient:
    """One account's view of an ACME server at ``directory_url``, over ``http``."""

    http: httpx.Client
    directory_url: str
    key: AccountKey = field(default_factory=AccountKey.generate)
    account_url: str | None = None
    nonce: str | None = None
    _directory: dict[str, Any] | None = None

    # -- directory and nonces -------------------------------------------------

    @property
    def directory(self) -> dict[str, Any]:
        if self._directory is None:
            response = self.http.get(self.directory_url)
            if response.status_code != 200:
                raise AcmeError(response)
            self._directory = response.json()
        return self._directory

    def url(self, name: str) -> str:
        return str(self.directory[name])

    def new_nonce(self) -> str:
        response = self.http.head(self.url("newNonce"))
        if response.status_code != 200 or "Replay-Nonce" not in response.headers:
            raise AcmeError(response)
        return response.headers["Replay-Nonce"]

    def _take_nonce(self) -> str:
        nonce, self.nonce = self.nonce, None
        return nonce or self.new_nonce()

    # -- signing and sending --------------------------------------------------

    def sign(
        self,
        url: str,
        payload: dict[str, Any] | bytes | None,
        *,
        use_jwk: bool = False,
        nonce: str | None = None,
        key: AccountKey | None = None,
        protected: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """The JWS of a request to ``url``: kid (the account URL) or jwk, and a nonce.

        ``protected`` replaces members of the header (None as a value drops one).
        """
        key = key or self.key
        header: dict[str, Any] = {"alg": key.alg, "nonce": nonce or self._take_nonce(), "url": url}
        if use_jwk or self.account_url is None:
            header["jwk"] = key.public_jwk
        else:
            header["kid"] = self.account_url
        for name, value in (protected or {}).items():
            if value is None:
                header.pop(name, None)
            else:
                header[name] = value
        return sign_jws(key, header, _payload_bytes(payload))

    def send(
        self, url: str, body: dict[str, Any] | bytes, content_type: str = JOSE_JSON
    ) -> httpx.Response:
        """POST ``body`` as it is; keeps the answer's nonce for the next request."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = self.http.post(url, content=content, headers={"Content-Type": content_type})
        if "Replay-Nonce" in response.headers:
            self.nonce = response.headers["Replay-Nonce"]
        return response

    def post(
        self,
        url: str,
        payload: dict[str, Any] | bytes | None,
        *,
        use_jwk: bool = False,
        retry_bad_nonce: bool = True,
        check: bool = True,
    ) -> httpx.Response:
        """A signed POST; one retry on badNonce with the nonce the refusal carried (§6.5)."""
        response = self.send(url, self.sign(url, payload, use_jwk=use_jwk))
        if retry_bad_nonce and _problem_type(response) == "badNonce":
            response = self.send(url, self.sign(url, payload, use_jwk=use_jwk))
        if check and response.status_code >= 400:
            raise AcmeError(response)
        return response

    def post_as_get(self, url: str, *, check: bool = True) -> httpx.Response:
        return self.post(url, None, check=check)

    # -- accounts -------------------------------------------------------------

    def eab(self, kid: str, hmac_key_b64: str, *, url: str | None = None) -> dict[str, str]:
        """The external account binding over this client's key (§7.3.4)."""
        protected = {"alg": "HS256", "kid": kid, "url": url or self.url("newAccount")}
        payload = json.dumps(self.key.public_jwk).encode()
        return sign_jws(None, protected, payload, mac_key=b64url_decode(hmac_key_b64))

    def new_account(
        self,
        eab_kid: str | None = None,
        eab_hmac_key: str | None = None,
        *,
        contact: list[str] | None = None,
        terms_agreed: bool = True,
        only_return_existing: bool = False,
        check: bool = True,
    ) -> httpx.Response:
        payload: dict[str, Any] = {"termsOfServiceAgreed": terms_agreed}
        if contact is not None:
            payload["contact"] = contact
        if only_return_existing:
            payload["onlyReturnExisting"] = True
        if eab_kid is not None and eab_hmac_key is not None:
            payload["externalAccountBinding"] = self.eab(eab_kid, eab_hmac_key)
        response = self.post(self.url("newAccount"), payload, use_jwk=True, check=check)
        if response.status_code in (200, 201):
            self.account_url = response.headers["Location"]
        return response

    def account(self) -> dict[str, Any]:
        assert self.account_url is not None
        return dict(self.post_as_get(self.account_url).json())

    def update_account(self, payload: dict[str, Any], *, check: bool = True) -> httpx.Response:
        assert self.account_url is not None
        return self.post(self.account_url, payload, check=check)

    def deactivate(self, *, check: bool = True) -> httpx.Response:
        return self.update_account({"status": "deactivated"}, check=check)

    def key_change_body(
        self,
        new_key: AccountKey,
        *,
        inner_url: str | None = None,
        account: str | None = None,
        old_key: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """The inner JWS of a rollover (§7.3.5), signed by ``new_key``."""
        url = self.url("keyChange")
        inner = {
            "account": account or self.account_url,
            "oldKey": old_key or self.key.public_jwk,
        }
        header = {"alg": new_key.alg, "jwk": new_key.public_jwk, "url": inner_url or url}
        return sign_jws(new_key, header, json.dumps(inner).encode())

    def key_change(self, new_key: AccountKey, *, check: bool = True) -> httpx.Response:
        inner = self.key_change_body(new_key)
        response = self.post(self.url("keyChange"), json.dumps(inner).encode(), check=check)
        if response.status_code == 200:
            self.key = new_key
        return response


def _problem_type(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        return str(response.json().get("type", "")).removeprefix(ACME_ERROR)
    except ValueError:
        return None
