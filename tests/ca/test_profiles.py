"""Certificate profiles are data plus small pure functions: tested without a server."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from policies.certificate_profiles import (
    PROFILES_DIR,
    ProfileError,
    key_refusal,
    key_type_of,
    load_profiles,
    parse_profile,
)

EXPECTED = {
    "person-authentication",
    "person-signing",
    "entity-seal",
    "tls-server",
    "tls-server-short",
    "backoffice-client",
    "oauth-client",
    "ocsp-responder",
    "service-signing",
}


def test_every_profile_file_loads() -> None:
    profiles = load_profiles()
    assert set(profiles) == EXPECTED
    assert profiles["person-signing"].key_usage == ("content_commitment",)
    assert profiles["tls-server"].validity_days <= 199  # CA/B Forum BR from March 2026
    assert profiles["ocsp-responder"].ocsp_nocheck and not profiles["ocsp-responder"].aia_ocsp
    assert all(p.lint for p in profiles.values())  # on by default; bulk issuance may switch off


def test_key_types_are_named() -> None:
    assert key_type_of(ec.generate_private_key(ec.SECP256R1()).public_key()) == "P-256"
    assert key_type_of(ec.generate_private_key(ec.SECP384R1()).public_key()) == "P-384"
    assert key_type_of(ec.generate_private_key(ec.SECP256K1()).public_key()) == "secp256k1"
    assert key_type_of(ed25519.Ed25519PrivateKey.generate().public_key()) == "Ed25519"


def test_key_refusals() -> None:
    profiles = load_profiles()
    person = profiles["person-authentication"]
    assert key_refusal(person, ec.generate_private_key(ec.SECP256R1()).public_key()) is None
    small = rsa.generate_private_key(65537, 1024).public_key()
    assert "too small" in (key_refusal(person, small) or "")
    edwards = ed25519.Ed25519PrivateKey.generate().public_key()
    assert "not allowed by profile person-authentication" in (key_refusal(person, edwards) or "")
    assert key_refusal(profiles["service-signing"], edwards) is None
    low_exponent = rsa.generate_private_key(3, 2048).public_key()
    assert "exponent 3" in (key_refusal(person, low_exponent) or "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('subject = "person"', "subject"),  # replaced below by an invalid value
        ("validity_days = 5000", "validity_days"),
        ('key_types = ["RSA-1024"]', "key_types"),
        ('colour = "blue"', "unknown fields"),
        ('linters = ["zlint"]', "linters"),
    ],
)
def test_malformed_profiles_name_the_field(tmp_path: Path, change: str, message: str) -> None:
    text = (PROFILES_DIR / "person-authentication.toml").read_text()
    if change.startswith("subject"):
        text = text.replace('subject = "person"', 'subject = "csr"')
    elif change.startswith("colour"):
        text += "\n" + change + "\n"
    else:
        field = change.split(" = ")[0]
        lines = [change if line.startswith(field + " ") else line for line in text.splitlines()]
        text = "\n".join(lines)
    path = tmp_path / "person-authentication.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message):
        parse_profile(path)


def test_profile_name_must_match_its_file(tmp_path: Path) -> None:
    path = tmp_path / "renamed.toml"
    path.write_text((PROFILES_DIR / "person-signing.toml").read_text())
    with pytest.raises(ProfileError, match="must match the file name"):
        parse_profile(path)
