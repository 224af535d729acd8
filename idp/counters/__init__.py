"""Service counters (Article 14): a clerk at a registered office serves a citizen who is present.

- :mod:`idp.counters.services`: the services an office's policy may list (pure).
- :mod:`idp.counters.offices`: registering an office (a legal entity in the deeds
  registry) and its clerks and supervisors.
- :mod:`idp.counters.presence`: the citizen's one-time presence code.
- :mod:`idp.counters.remote_presence` and :mod:`idp.counters.citizen_pages`: presence
  confirmed with the citizen's passkey on their own phone (a QR code on the clerk's
  page, a public confirmation page).
- :mod:`idp.counters.assisted`: starting, proving, running a listed service, ending;
  every act and every refusal is one audit entry naming clerk, citizen and office.
- :mod:`idp.counters.review`: the supervisor's queue and flags (auditors search
  ``counter_flagged``).
- :mod:`idp.counters.pages`: the console pages under ``/console/counter``.
"""
