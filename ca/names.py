"""Names and URLs of the CA hierarchy, shared by certificates, CRLs and OCSP.

URL shapes (agreed with the CRL/OCSP side, do not change one without the other):
``{issuer}/ca/{publication}.crt`` (AIA caIssuers, DER), ``{issuer}/ocsp`` (AIA OCSP),
``{issuer}/crl/{publication}.crl`` (CDP) and ``{issuer}/crl/{publication}-delta.crl``.
The publication name of a CA is its name for generation 1 and ``{name}-g{N}``
after a rollover, so each key generation keeps its own certificate and CRL.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

ROOT = "root"
ISSUING_CAS = ("persons", "organisations", "infrastructure")
ORGANIZATION = "Hoviyat"
COUNTRY = "IR"
_TITLES = {
    "root": "Root CA",
    "persons": "Persons CA",
    "organisations": "Organisations CA",
    "infrastructure": "Infrastructure CA",
}


def http_base(issuer: str) -> str:
    """The base of AIA and CDP URLs: plain HTTP, as RFC 5280 and the CA/B Forum BR require.

    A relying party checking a TLS certificate's revocation must not need TLS to
    do it; the files are signed, so HTTP loses nothing. Same host and paths as
    the issuer; the reverse proxy serves /ca and /crl and /ocsp over HTTP.
    """
    base = issuer.rstrip("/")
    return "http://" + base.removeprefix("https://") if base.startswith("https://") else base


def publication_name(name: str, generation: int) -> str:
    return name if generation == 1 else f"{name}-g{generation}"


def ca_subject(name: str, generation: int) -> x509.Name:
    title = _TITLES.get(name, f"{name.title()} CA")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{ORGANIZATION} {title} G{generation}"),
        ]
    )


def ca_issuers_url(issuer: str, publication: str) -> str:
    return f"{http_base(issuer)}/ca/{publication}.crt"


def ocsp_url(issuer: str) -> str:
    return f"{http_base(issuer)}/ocsp"


def crl_url(issuer: str, publication: str) -> str:
    return f"{http_base(issuer)}/crl/{publication}.crl"


def delta_crl_url(issuer: str, publication: str) -> str:
    return f"{http_base(issuer)}/crl/{publication}-delta.crl"
