"""Identity attestations that replace photocopies (bylaw Article 12).

A holder logged in at level substantial or higher gets the facts they choose
signed twice, as a JWT and as an SD-JWT, by a key certified by the Hoviyat CA;
a receiver checks either offline, trusting only the root. One module each:

- ``rfc9901``: SD-JWT issuance, presentation and every verifier check of §7;
- ``x5c``: the signer's chain in the JOSE header, validated against the root;
- ``signing``: the attestation signer (ES256 key + chain);
- ``provision``: obtaining that signer's certificate from the Hoviyat CA;
- ``status_list``: the IETF OAuth Token Status List (revocation);
- ``claims``: OIDC4IDA ``verified_claims`` and derived facts (age over N...);
- ``issuer`` / ``verifier``: the two sides, the verifier's report in fa/en;
- ``qr`` / ``sharing``: verification codes and QR codes for counter clerks;
- ``service``: the parts one server process shares.

HTTP: ``idp.http.attestations``; CLI: ``idp.cli.attest``; receivers: RECEIVERS.md.
"""
