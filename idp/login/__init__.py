"""The citizen's side of OpenID Connect: login, step-up, entity selection and consent pages.

``/authorize`` (the protocol side, ``idp.oidc``) hands the browser to
``GET /login?interaction=<id>`` (or, to a browser without a session, answers
with the first form itself); these pages authenticate the person at the level
the client asked for, let them pick a legal entity, ask for consent, and when
nothing is left close the interaction and answer the client with its code
(``idp.oidc.completion``); cancel and deny go through ``/authorize/complete``.
Sessions live in the database (``idp.storage.login``).
"""
