"""Which DNS names a legal entity may order over ACME: pure functions over its service policy.

A service policy's ``[acme]`` table lists the entity's domains. A requested name
is allowed when, once normalised, it equals one of them or lies under one on a
label boundary (``www.tax.example.com`` is under ``tax.example.com``;
``evil-tax.example.com`` is not). A wildcard ``*.x`` is allowed exactly when ``x`` is.
The domains themselves are checked when the policy loads: no wildcard, and
none that is a public suffix (``gov.ir`` would hand one entity every agency's
names) or under a top-level domain the public suffix list does not know (the
CA refuses such Internal Names at issuance, CA/B Forum BR 1.6.1).

Normalisation follows what the certificate will carry (RFC 8555 §7.1.4, RFC 5280
§4.2.1.6, CA/B Forum BR 7.1.2.7.12): lower case; IDNA 2008 A-labels, with UTS #46
mapping so a U-label, a full-width dot or an upper-case A-label all reach the
one form the policy is checked against; no trailing dot (an absolute name
would be a second spelling of the same name); letters, digits and hyphens only
(no underscore); labels of 1..63 octets, 253 in all; at least two labels; no
IP address; a wildcard only as the whole first label.

No I/O and nothing from ``idp`` or ``ca`` (import-linter's "libraries-alone").
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import idna
from publicsuffixlist import PublicSuffixList

if TYPE_CHECKING:
    from policies.service_policy import ServicePolicy

MAX_NAME = 253  # RFC 1035 §2.3.4, in presentation form without the trailing dot
MAX_LABEL = 63
_MAX_INPUT = 1024  # refused before any IDNA work: four times the longest name
_LDH = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


class NameRefused(ValueError):
    """A requested DNS name that is not one: the message is the reason."""


@dataclass(frozen=True)
class AcmePolicy:
    """The ``[acme]`` table of a service policy: the domains whose subtrees the entity owns."""

    domains: tuple[str, ...] = ()

    def to_document(self) -> dict[str, Any]:
        return {"domains": list(self.domains)}


def normalise_name(raw: object) -> str:
    """The one spelling of DNS name ``raw`` (``*.`` kept in front), or :class:`NameRefused`."""
    if not isinstance(raw, str):
        raise NameRefused("a DNS name must be a string")
    if not raw or len(raw) > _MAX_INPUT:
        raise NameRefused("empty or far too long")
    wildcard = raw.startswith("*.")
    rest = raw[2:] if wildcard else raw
    if "*" in rest:
        raise NameRefused("a wildcard may only be the whole first label")
    if "_" in rest:
        raise NameRefused("an underscore is not allowed in a host name (RFC 952, BR 7.1.4.3)")
    if _is_ip_literal(rest):
        raise NameRefused("an IP address is not a DNS name")
    if any(_invisible(char) for char in rest):
        # UTS #46 would silently drop these: "tax\u200b.example" is not a name
        # anyone typed, but a disguise, and the certificate would not show it.
        raise NameRefused("an invisible or formatting character")
    try:
        # UTS #46 maps first (case, full-width forms, ideographic full stops), so
        # the dot and label checks below see what IDNA would make of the name.
        mapped = idna.uts46_remap(rest, std3_rules=True, transitional=False)
    except (idna.IDNAError, UnicodeError) as exc:
        raise NameRefused(f"not a valid internationalised name: {exc}") from None
    if "*" in mapped:
        raise NameRefused("a wildcard may only be the whole first label")
    if mapped.endswith("."):
        raise NameRefused("a trailing dot is not allowed")
    labels = mapped.split(".")
    if any(not label for label in labels):
        raise NameRefused("empty label")
    ascii_labels = [_a_label(label) for label in labels]
    for label in ascii_labels:
        if len(label) > MAX_LABEL:
            raise NameRefused(f"a label is longer than {MAX_LABEL} octets")
        if not _LDH.match(label):
            raise NameRefused("only letters, digits and inner hyphens may form a label")
        if label[2:4] == "--" and not label.startswith("xn--"):
            # RFC 5891 §4.2.3.1: reserved for future prefixes like "xn--".
            raise NameRefused("hyphens in the third and fourth positions")
    name = ".".join(ascii_labels)
    if len(name) > MAX_NAME:
        raise NameRefused(f"longer than {MAX_NAME} octets")
    if len(ascii_labels) < 2:
        raise NameRefused("a bare top-level domain")
    if ascii_labels[-1].isdigit() or _is_ip_literal(name):
        raise NameRefused("an IP address is not a DNS name")  # RFC 3696 §2: no all-digit TLD
    return "*." + name if wildcard else name


def _invisible(char: str) -> bool:
    # ZWNJ and ZWJ are letters' business in Persian labels (IDNA 2008 CONTEXTJ checks them).
    if char in "\u200c\u200d":
        return False
    return unicodedata.category(char) == "Cf" or unicodedata.name(char, "").startswith(
        "VARIATION SELECTOR"
    )


def _is_ip_literal(text: str) -> bool:
    candidate = text.strip("[]")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _a_label(label: str) -> str:
    """One label as its IDNA 2008 A-label, checked both ways so only one spelling passes."""
    try:
        if label.isascii() and not label.startswith("xn--"):
            return label  # plain LDH: checked by the caller's pattern
        a_label = idna.alabel(idna.ulabel(label) if label.startswith("xn--") else label)
        encoded = a_label.decode("ascii")
        if label.startswith("xn--") and encoded != label:
            # A-labels that decode to the same U-label must not be two names.
            raise NameRefused("an A-label that is not the canonical encoding of its U-label")
        # Round trip: a label whose U-label does not encode back to it is not IDNA 2008.
        if idna.alabel(idna.ulabel(encoded)).decode("ascii") != encoded:
            raise NameRefused("an A-label that does not round-trip")
        return encoded
    except (idna.IDNAError, UnicodeError) as exc:
        raise NameRefused(f"not a valid IDNA 2008 label: {exc}") from None


def is_under(name: str, domain: str) -> bool:
    """``name`` equals ``domain`` or lies under it on a label boundary (both normalised)."""
    return name == domain or name.endswith("." + domain)


def refusal(domains: Iterable[str], raw: object) -> str | None:
    """Why the name ``raw`` may not be ordered under ``domains``, or None if it may."""
    try:
        name = normalise_name(raw)
    except NameRefused as exc:
        return str(exc)
    base = name.removeprefix("*.")
    if not any(is_under(base, domain) for domain in domains):
        return "outside the domains the service policy allows"
    return None


def names_refused(policy: ServicePolicy, names: Iterable[object]) -> list[tuple[str, str]]:
    """(name, reason) for each requested name the entity may not order; empty: all allowed."""
    domains = policy.acme.domains
    refused = []
    for raw in names:
        reason = refusal(domains, raw)
        if reason is not None:
            refused.append((raw if isinstance(raw, str) else repr(raw), reason))
    return refused


@cache
def _public_suffixes() -> PublicSuffixList:
    # The snapshot bundled with the package (nothing fetched), as ca.names reads it:
    # accept_unknown=False makes a name under an unknown TLD an Internal Name.
    return PublicSuffixList(accept_unknown=False)


def parse_acme_table(table: object, source: str) -> AcmePolicy:
    """The ``[acme]`` table of a policy file; ValueError naming ``source`` if it is wrong."""
    if table is None:
        return AcmePolicy()
    if not isinstance(table, Mapping):
        raise ValueError(f"{source}: [acme] must be a table")
    unknown = set(table) - {"domains"}
    if unknown:
        raise ValueError(f"{source}: unknown keys in [acme]: {sorted(unknown)}")
    domains = table.get("domains", [])
    if not isinstance(domains, list):
        raise ValueError(f"{source}: acme.domains must be a list of DNS names")
    normalised = []
    for domain in domains:
        if isinstance(domain, str) and "*" in domain:
            raise ValueError(
                f"{source}: acme.domains {domain!r}: no wildcards; a domain's "
                "subtree is allowed already"
            )
        try:
            name = normalise_name(domain)
        except NameRefused as exc:
            raise ValueError(f"{source}: acme.domains {domain!r}: {exc}") from None
        suffixes = _public_suffixes()
        if suffixes.publicsuffix(name) is None:
            # The CA refuses Internal Names (BR 1.6.1) at issuance: say so at load.
            raise ValueError(
                f"{source}: acme.domains {domain!r} is under no top-level domain of the "
                "public suffix list: no certificate could ever name it"
            )
        if suffixes.is_public(name):
            raise ValueError(
                f"{source}: acme.domains {domain!r} is a public suffix: it would allow "
                "names anyone can register under it"
            )
        normalised.append(name)
    return AcmePolicy(domains=tuple(sorted(set(normalised))))
