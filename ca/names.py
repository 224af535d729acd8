"""Names and URLs of the CA hierarchy, shared by certificates, CRLs and OCSP.

URL shapes (agreed with the CRL/OCSP side, do not change one without the other):
``{issuer}/ca/{publication}.crt`` (AIA caIssuers, DER), ``{issuer}/ocsp`` (AIA OCSP),
``{issuer}/crl/{publication}.crl`` (CDP) and ``{issuer}/crl/{publication}-delta.crl``.
The publication name of a CA is its name for generation 1 and ``{name}-g{N}``
after a rollover, so each key generation keeps its own certificate and CRL.

Also here: which DNS names may appear in a certificate at all
(:func:`check_dns_name`), whoever approved them.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import idna
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from publicsuffixlist import PublicSuffixList

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


# CA/B Forum BR 7.1.2.6 and 7.1.2.10.6: a CA that issues TLS server certificates
# carries an EKU with id-kp-serverAuth (id-kp-clientAuth allowed beside it;
# id-kp-OCSPSigning and anyExtendedKeyUsage are not). The infrastructure CA
# issues the tls-server profile, and the backoffice-client profile (clientAuth).
_CA_EXTENDED_KEY_USAGES = {
    "infrastructure": (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
}


def issuing_ca_extended_key_usage(name: str) -> x509.ExtendedKeyUsage | None:
    """The EKU extension of issuing CA ``name``'s certificate, or None for none."""
    usages = _CA_EXTENDED_KEY_USAGES.get(name)
    return x509.ExtendedKeyUsage(list(usages)) if usages else None


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


# -- DNS names in subscriber certificates ---------------------------------------------
# CA/B Forum BR 7.1.2.7.12: a dNSName is a Fully-Qualified Domain Name or a Wildcard
# Domain Name made of P-Labels (valid IDNA 2008 A-labels, RFC 5890 2.3.2.1) and
# Non-Reserved LDH Labels; no Internal Names (BR 1.6.1), nothing that is itself a
# public suffix, and no wildcard directly over one (BR 3.2.2.6).

_LDH_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAX_NAME = 253  # RFC 1035 2.3.4, without the trailing dot
# UTS 39 5.2 "Highly Restrictive": one script per label, or Latin with the
# scripts Chinese, Japanese and Korean are written in together.
_SCRIPT_MIXES = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


class InvalidDNSName(ValueError):
    """The name may not appear in a certificate; the message says which rule failed."""


@cache
def _public_suffixes() -> PublicSuffixList:
    # The snapshot bundled with the package: nothing is fetched at run time.
    # accept_unknown=False: a name under a TLD the list does not know is an
    # Internal Name (BR 1.6.1), not a registrable one.
    return PublicSuffixList(accept_unknown=False)


def _script(character: str) -> str | None:
    """The script of a letter, from its Unicode name; None for digits, marks and '-'."""
    if unicodedata.category(character)[0] != "L":
        return None
    words = unicodedata.name(character, "UNKNOWN").split()
    return "CJK" if words[0] == "CJK" else words[0]


def _check_label(label: str, shown: str) -> None:
    if not _LDH_LABEL.match(label):
        raise InvalidDNSName(
            f"{shown!r}: label {label[:70]!r} is not letters, digits and inner hyphens of "
            "1..63 characters"
        )
    if label[2:4] != "--":
        return
    if not label.startswith("xn--"):
        raise InvalidDNSName(
            f"{shown!r}: label {label!r} is a reserved LDH label (hyphens in positions "
            "3 and 4) that is not an IDNA A-label"
        )
    try:
        unicode_label = idna.decode(label)
        valid = idna.encode(unicode_label).decode("ascii") == label
    except (idna.IDNAError, UnicodeError):
        valid = False
    if not valid:
        raise InvalidDNSName(
            f"{shown!r}: label {label!r} is not a valid IDNA 2008 A-label (RFC 5891)"
        )
    scripts = {s for s in map(_script, unicode_label) if s}
    if len(scripts) > 1 and not any(scripts <= mix for mix in _SCRIPT_MIXES):
        raise InvalidDNSName(
            f"{shown!r}: label {label!r} ({unicode_label}) mixes the scripts "
            f"{', '.join(sorted(scripts))}: a homograph of another name"
        )


def check_dns_name(name: str) -> str:
    """``name`` as it goes into a dNSName (lowercase A-labels, no trailing dot), or
    :class:`InvalidDNSName` naming the rule it breaks."""
    host = name.strip().lower().rstrip(".")
    shown = host[:80]
    if not host.isascii():
        try:
            suggestion = f"; as A-labels: {idna.encode(host.removeprefix('*.')).decode()}"
        except (idna.IDNAError, UnicodeError):
            suggestion = ""
        raise InvalidDNSName(
            f"{shown!r}: internationalised names go in certificates as xn-- A-labels{suggestion}"
        )
    wildcard = host.startswith("*.")
    base = host[2:] if wildcard else host
    labels = base.split(".")
    if len(host) > _MAX_NAME:
        raise InvalidDNSName(f"{shown}...: longer than {_MAX_NAME} characters")
    if len(labels) < 2 and not wildcard:  # "*.ir" is refused below, as a wildcard over .ir
        raise InvalidDNSName(f"{shown!r}: not a fully qualified domain name")
    for label in labels:
        _check_label(label, shown)
    if labels[-1].isdigit():
        raise InvalidDNSName(f"{shown!r}: an IP address, not a DNS name")
    suffixes = _public_suffixes()
    if suffixes.publicsuffix(base) is None:
        raise InvalidDNSName(
            f"{shown!r}: .{labels[-1]} is not a top-level domain in the public suffix list "
            "(an Internal Name, BR 1.6.1)"
        )
    if suffixes.is_public(base):
        what = "a wildcard directly over the public suffix" if wildcard else "a public suffix"
        raise InvalidDNSName(
            f"{shown!r}: {what} {base!r}; certificates name a domain registered under it"
        )
    return host
