"""The console at /console: pages for the people who run and watch Hoviyat (issue 15).

Server-rendered, Persian first and English second, signed in through Hoviyat's
own OpenID Connect login (the console is a client of the provider). The
framework (:mod:`idp.console.framework`) gives every page the signed-in user,
role checks that audit each refusal, CSRF and rendering; pages add routers to
:data:`idp.console.routes.ROUTERS`.
"""
