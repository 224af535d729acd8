"""OpenID Connect provider: one module per spec, as Authlib lays out its folders.

- ``authorize``: the authorization endpoint (OIDC Core §3.1.2, RFC 9700 §2.1).
- ``completion``: closing an interaction once and answering the client (§3.1.2.5-6).
- ``rfc7636``: PKCE (S256 only).
- ``rfc7523``: ``private_key_jwt`` client authentication.
- ``grants``: the grant aggregate (code issuance, token response, revocation);
  the grant types that spend it are ``idp.oauth.grants.authorization_code``
  and ``idp.oauth.grants.refresh_token``.
- ``id_token``: ID token claims (OIDC Core §2, §3.1.3.6).
- ``claims``: which identity claims a request asks for and its service policy
  allows, with OpenID Connect for Identity Assurance ``verified_claims``;
  ``identity`` fills them from the registries for a grant.
- ``pairwise``: pairwise subject identifiers (OIDC Core §8.1).
- ``userinfo``, ``rfc7662`` (introspection), ``rfc7009`` (revocation),
  ``logout`` (RP-initiated logout 1.0).
- ``registration``: what ``hoviyat clients create`` accepts for an OIDC client.

The HTTP side is ``idp.http.oidc``, listed with its grants, methods and
direct routes in ``idp.features``; the tables are ``idp.storage.oidc`` and
their statements ``idp.storage.grants``.
"""
