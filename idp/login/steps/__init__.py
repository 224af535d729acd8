"""The login steps, one module each (node-oidc-provider's one file per action).

Each step takes the posted form, already checked by :mod:`idp.login.steps.posted`
(CSRF, a login still in progress, the session, the language), and returns a
typed outcome: a redirect, or a page (the form again with its errors), with
the audit events of what happened. The routes are in :mod:`idp.login.pages`.
"""
