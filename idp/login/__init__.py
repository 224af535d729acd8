"""The citizen's side of OpenID Connect: login, step-up, entity selection and consent pages.

``/authorize`` (the protocol side, ``idp.oidc``) hands the browser to
``GET /login?interaction=<id>``; these pages authenticate the person at the
level the client asked for, let them pick a legal entity, ask for consent,
write the outcome into the interaction row and hand the browser back to
``/authorize/complete``. Sessions live in the database (``idp.storage.login``).
"""
