"""The FAPI 2.0 Security Profile (OpenID FAPI 2.0, final, 2025) as a per-client profile.

A client registered with ``profile = "fapi2"`` (tax, banking, land-registry
and court apps) gets the profile's guarantees whatever it sends:

- §5.3.1.2: authorization requests only through PAR (RFC 9126), with PKCE
  S256 (Hoviyat requires S256 of every client already);
- §5.3.1.1 / §5.3.2.1: client authentication by ``private_key_jwt`` (whose
  assertion ``aud`` must be exactly the issuer, not the token URL) or mutual
  TLS (RFC 8705 §2: ``tls_client_auth``, ``self_signed_tls_client_auth``);
- §5.3.2.1: sender-constrained access tokens, by DPoP (RFC 9449) or by the
  client's TLS certificate (RFC 8705 §3, when registered with
  ``tls_client_certificate_bound_access_tokens``; DPoP otherwise); refresh
  tokens then only ever mint bound access tokens, since /token refuses the
  client without its proof or certificate;
- §5.4: PS256 or ES256 signatures (RS256 is refused);
- §5.3.2.1: codes live at most 60 s and pushed requests under 600 s, as for
  every Hoviyat client (``idp.oidc.grants.CODE_LIFETIME``, ``par_lifetime_seconds``).
"""

from __future__ import annotations

from collections.abc import Sequence

PROFILE = "fapi2"
PROFILES = (PROFILE,)
AUTH_METHODS = ("private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth")
ALGORITHMS = ("PS256", "ES256")


def registration_refusal(
    profile: str, grants: Sequence[str], auth_method: str, id_token_alg: str
) -> str | None:
    """Why this registration cannot hold the profile, or None."""
    if profile not in PROFILES:
        return f"unknown profile {profile!r}; known: {list(PROFILES)}"
    if "authorization_code" not in grants:
        return "a fapi2 client uses the authorization code flow (FAPI 2.0 §5.3.1.2)"
    if auth_method not in AUTH_METHODS:
        return f"a fapi2 client authenticates with {' or '.join(AUTH_METHODS)} (FAPI 2.0 §5.3.1.1)"
    if id_token_alg not in ALGORITHMS:
        return f"a fapi2 client's signatures are {' or '.join(ALGORITHMS)} (FAPI 2.0 §5.4)"
    return None


def assertion_audience_ok(profile: str | None, audience: object, issuer: str) -> bool:
    """§5.3.2.1: a fapi2 client's assertion names the issuer itself, nothing else."""
    return profile != PROFILE or audience == issuer
