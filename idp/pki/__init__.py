"""The registration step of the CA (Boulder's RA): decide, then have ``ca/`` sign.

``csr.py`` checks what the requester sent, ``subjects.py`` makes the subject
from registry data (never from the CSR), ``registration.py`` ties them to a
profile and hands an order to ``ca.issuance``; ``responders.py`` decides the
OCSP responder certificates. ``ca/`` records through the stores of
``idp/storage`` (``hierarchy.py`` wires them in); ``service.py`` builds the
whole thing for the app and the CLI. None of these modules speaks SQL.
"""
