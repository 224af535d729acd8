"""ACME (RFC 8555): agency servers get their TLS certificates from Hoviyat's CAs.

One module a concern, each naming the RFC section it follows:

- :mod:`idp.acme.settings`: ``HOVIYAT_ACME_*``, read once per service.
- :mod:`idp.acme.problems`: ``urn:ietf:params:acme:error:*`` problem documents (§6.7).
- :mod:`idp.acme.rfc8555_jws`: the JWS every POST carries (§6.2-6.4).
- :mod:`idp.acme.nonces`: ``Replay-Nonce`` values, single use across workers and hosts (§6.5).
- :mod:`idp.acme.eab`: external account binding keys, one per legal entity (§7.3.4).
- :mod:`idp.acme.requests`: the authenticated-POST dependency every resource uses.
- :mod:`idp.acme.account_routes`: directory, newNonce, accounts, key rollover (§7.1-7.3).
- :mod:`idp.acme.order_routes`: orders, authorizations, challenges, finalize,
  certificate download, revocation (§7.4-7.6).
- :mod:`idp.acme.rfc9773`: renewal information (ARI).
- :mod:`idp.acme.validation`: http-01, dns-01 (§8.3, §8.4) and tls-alpn-01 (RFC 8737).

Every certificate still goes through :class:`idp.pki.registration.Pki`: the same
registration decisions, pre-signing lint and intent-before-signature records
as any other certificate.
"""
