"""The WebAuthn ceremonies (W3C WebAuthn Level 3 §7.1 registration, §7.2
authentication), checked by the maintained ``webauthn`` library (py_webauthn).

The relying party is the issuer: its host is the RP ID and its origin the only
origin accepted (§13.4.9), so an assertion made for a look-alike site is
worthless here. Both ceremonies require user verification (§6.2.3): a
passkey is then possession of a hardware-held key (``hwk``) plus a PIN or
biometric the authenticator checked (``user``), RFC 8176, which with its
binding after substantial identity proofing is eIDAS high.

Nothing here touches the database; :mod:`idp.login.steps.passkey` stores and
spends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.login.config import LoginSettings
from idp.storage.passkeys import Passkey

# A posted credential is a few hundred bytes (a few KB with an attestation chain).
MAX_CREDENTIAL_BYTES = 32_000
TIMEOUT_MS = 120_000
# id-fido-gen-ce-aaguid (WebAuthn §8.2.1): the model an attestation certificate is for.
FIDO_GEN_CE_AAGUID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")


class PasskeyRefused(ValueError):
    """The browser's answer does not hold; ``reason`` is the audit outcome."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RelyingParty:
    rp_id: str
    origin: str
    name: str


def relying_party(issuer: str) -> RelyingParty:
    """The RP ID is the issuer's host (§5.1.2), the origin its scheme, host and port."""
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    return RelyingParty(rp_id=host, origin=f"{parts.scheme}://{parts.netloc}", name="Hoviyat")


def new_challenge() -> bytes:
    """32 random bytes (§13.4.3 asks at least 16)."""
    return secrets.token_bytes(32)


def user_handle(key: bytes, national_code: str) -> bytes:
    """The WebAuthn user.id (§14.6.1: no personal data): a keyed digest of the person,
    distinct from the audit log's subject hash so the two cannot be matched."""
    return hmac.new(key, national_code.encode("ascii"), hashlib.sha256).digest()


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(passkey.credential_id))


def registration_options(
    rp: RelyingParty,
    settings: LoginSettings,
    *,
    challenge: bytes,
    handle: bytes,
    user_name: str,
    existing: list[Passkey],
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptions (§5.4) as JSON for the page's script."""
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_id=handle,
        user_name=user_name,
        user_display_name=user_name,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference(settings.webauthn_attestation),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        # §5.4.3 excludeCredentials: the same authenticator is not registered twice.
        exclude_credentials=[_descriptor(passkey) for passkey in existing],
    )
    parsed: dict[str, Any] = json.loads(options_to_json(options))
    return parsed


def authentication_options(
    rp: RelyingParty, *, challenge: bytes, allowed: list[Passkey]
) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptions (§5.5): only this person's passkeys are allowed."""
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=[_descriptor(passkey) for passkey in allowed],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    parsed: dict[str, Any] = json.loads(options_to_json(options))
    return parsed


def claimed_challenge(credential: str) -> str:
    """The challenge the browser says it signed (base64url), read before anything is
    verified, only to find which stored challenge to spend; raises PasskeyRefused."""
    if len(credential) > MAX_CREDENTIAL_BYTES:
        raise PasskeyRefused("malformed", "credential too large")
    try:
        document = json.loads(credential)
        response = document["response"] if isinstance(document, dict) else None
        if not isinstance(response, dict) or not isinstance(response.get("clientDataJSON"), str):
            raise PasskeyRefused("malformed", "no clientDataJSON")
        client_data = parse_client_data_json(base64url_to_bytes(response["clientDataJSON"]))
    except (ValueError, KeyError, TypeError, WebAuthnException) as exc:
        raise PasskeyRefused("malformed", str(exc)) from exc
    return bytes_to_base64url(client_data.challenge)


@dataclass(frozen=True, slots=True)
class NewPasskey:
    credential_id: str
    public_key: bytes
    sign_count: int
    aaguid: str
    transports: list[str]


def verify_registration(
    rp: RelyingParty, settings: LoginSettings, credential: str, challenge: bytes
) -> NewPasskey:
    """§7.1 steps 5-27 (the library) plus the deployment's attestation policy."""
    roots: dict[AttestationFormat, list[bytes]] | None = None
    if settings.webauthn_attestation == "direct" and settings.webauthn_attestation_roots_file:
        pems = attestation_roots(settings.webauthn_attestation_roots_file)
        roots = {fmt: pems for fmt in AttestationFormat if fmt != AttestationFormat.NONE}
    try:
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            require_user_presence=True,
            require_user_verification=True,
            pem_root_certs_bytes_by_fmt=roots,
        )
    except (ValueError, KeyError, TypeError, WebAuthnException) as exc:
        raise PasskeyRefused("invalid", str(exc)) from exc
    if settings.webauthn_attestation == "direct":
        _check_attestation(settings, verified.fmt, verified.attestation_object, verified.aaguid)
    transports = [transport.value for transport in parsed.response.transports or []]
    return NewPasskey(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        transports=transports[:8],
    )


def _check_attestation(
    settings: LoginSettings, fmt: AttestationFormat, attestation_object: bytes, aaguid: str
) -> None:
    """With direct attestation the authenticator must name its model with a
    certificate (§8: "none" and self attestation prove nothing about it), and that
    model must be allowed."""
    if fmt == AttestationFormat.NONE:
        raise PasskeyRefused("attestation_missing", "no attestation statement")
    statement = parse_attestation_object(attestation_object).att_stmt
    if not statement.x5c:
        raise PasskeyRefused("attestation_missing", "self attestation")
    # §8.2.1: a certificate naming a model (id-fido-gen-ce-aaguid) must name this one;
    # the library checks the chain and the signature, not this.
    try:
        leaf = x509.load_der_x509_certificate(statement.x5c[0])
        named = leaf.extensions.get_extension_for_oid(FIDO_GEN_CE_AAGUID).value
    except x509.ExtensionNotFound:
        named = None
    except ValueError as exc:
        raise PasskeyRefused("invalid", "attestation certificate unreadable") from exc
    if named is not None:
        value = named.value if isinstance(named, x509.UnrecognizedExtension) else b""
        if value != b"\x04\x10" + uuid.UUID(aaguid).bytes:
            raise PasskeyRefused("invalid", "attestation certificate names another model")
    if settings.webauthn_aaguids and aaguid.lower() not in settings.webauthn_aaguids:
        raise PasskeyRefused("aaguid_not_allowed", aaguid)


def attestation_roots(path: Path) -> list[bytes]:
    """The PEM certificates of the roots file, one entry each (read per registration:
    registrations are rare and the file may be replaced while running)."""
    text = path.read_bytes()
    marker = b"-----END CERTIFICATE-----"
    return [
        part.strip() + b"\n" + marker + b"\n" for part in text.split(marker) if b"BEGIN" in part
    ]


def assertion_credential_id(credential: str) -> str:
    """The credential id the assertion names (base64url), to look its record up."""
    try:
        parsed = parse_authentication_credential_json(credential)
    except (ValueError, KeyError, TypeError, WebAuthnException) as exc:
        raise PasskeyRefused("malformed", str(exc)) from exc
    return bytes_to_base64url(parsed.raw_id)


def verify_authentication(
    rp: RelyingParty, credential: str, challenge: bytes, passkey: Passkey
) -> int:
    """§7.2 steps 7-21 with the stored public key; the new signature counter.

    The counter is given as 0 here and compared by the caller after the
    signature holds (and by a conditional UPDATE), so a regression is known to
    come from the real key, a clone, and is audited as such.
    """
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (ValueError, KeyError, TypeError, WebAuthnException) as exc:
        raise PasskeyRefused("invalid", str(exc)) from exc
    if not verified.user_verified:  # the library checks it; the level depends on it
        raise PasskeyRefused("invalid", "user not verified")
    return verified.new_sign_count
