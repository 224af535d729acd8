"""Which names an entity may order over ACME (``policies.acme``), from the attacker's side.

The attacker holds a valid EAB-bound account for one agency and asks for names
of another: suffix confusion, look-alike letters, IDNA spellings, trailing dots,
case, stacked wildcards, IP literals. Pure functions: no server needed.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from ca.names import check_dns_name  # the issuance-side rule, not the policy's own
from policies.acme import (
    AcmePolicy,
    NameRefused,
    is_under,
    names_refused,
    normalise_name,
    parse_acme_table,
    refusal,
)
from policies.service_policy import PolicyError, ServicePolicy, load_service_policies, parse_policy

DOMAIN = "tax.example.com"
POLICY = ServicePolicy(
    service_code="t",
    title_fa="t",
    title_en="t",
    legal_basis="t",
    service_type="sovereign",
    operations=frozenset(),
    acme=AcmePolicy(domains=(DOMAIN,)),
)
LDH_NAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]*[a-z][a-z0-9-]*$")

labels = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=20)


def allowed(name: object) -> bool:
    return names_refused(POLICY, [name]) == []


# --- the boundary rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "tax.example.com",
        "www.tax.example.com",
        "a.b.c.tax.example.com",
        "*.tax.example.com",
        "*.www.tax.example.com",
        "TAX.Example.COM",  # DNS is case-insensitive (RFC 4343)
        "xn--bcher-kva.tax.example.com",
        "bücher.tax.example.com",  # a U-label becomes its A-label
        "ｗｗｗ.tax.example.com",  # full-width letters map to ASCII (UTS #46)
        "www.tax．example。com",  # so do full-width and ideographic full stops
    ],
)
def test_names_in_the_policy_subtree_are_allowed(name: str) -> None:
    assert names_refused(POLICY, [name]) == []


@pytest.mark.parametrize(
    "name",
    [
        "evil-tax.example.com",  # suffix confusion: not on a label boundary
        "eviltax.example.com",
        "ax.example.com",
        "example.com",  # the parent is not the subtree
        "*.example.com",  # a wildcard over the parent covers other agencies
        "tax.example.com.evil.net",  # the policy's domain as a prefix
        "tax.example.comm",
        "tax-example.com",
        "taxexample.com",
        "www.tax.example.org",
    ],
)
def test_attack_suffix_confusion_is_refused(name: str) -> None:
    assert names_refused(POLICY, [name]) == [
        (name, "outside the domains the service policy allows")
    ]


@pytest.mark.parametrize(
    "name",
    [
        "t\u0430x.example.com",  # Cyrillic a
        "tax.ex\u0430mple.com",
        "www.t\u0430x.example.com",
        "\u0442ax.example.com",  # Cyrillic te
        "tax.example.c\u043em",  # Cyrillic o
        "tax.example.com\u2024evil.net",  # one dot leader, not a full stop
        "xn--tx-8kc.example.com",  # the Cyrillic-a spelling, already as an A-label
    ],
)
def test_attack_homoglyphs_never_reach_the_policy_domain(name: str) -> None:
    assert not allowed(name)


@pytest.mark.parametrize(
    "name",
    [
        "tax.example.com.",  # an absolute name: a second spelling
        "www.tax.example.com..",
        "www.tax.example.com\u3002",  # an ideographic full stop at the end maps to a dot
        ".www.tax.example.com",
        "www..tax.example.com",
        "*.*.tax.example.com",
        "*.*",
        "**.tax.example.com",
        "w*.tax.example.com",
        "www.*.tax.example.com",
        "*tax.example.com",
        "*",
        "*.",
        "_acme-challenge.tax.example.com",  # underscores: not a host name
        "www_1.tax.example.com",
        "-www.tax.example.com",
        "www-.tax.example.com",
        "ww--w.tax.example.com",  # R-LDH without xn--
        "xn--.tax.example.com",
        "xn--abc.tax.example.com",  # not valid punycode
        "xn--www-.tax.example.com",
        "www.tax.example.com\x00",
        "www.tax.example.com\n",
        " www.tax.example.com",
        "www tax.example.com",
        "www\u200b.tax.example.com",  # zero-width space: UTS #46 would drop it
        "w\u00adww.tax.example.com",  # soft hyphen
        "ww\ufe0fw.tax.example.com",  # variation selector
        "www/x.tax.example.com",
        "www@tax.example.com",
        "a" * 64 + ".tax.example.com",
        ".".join(["a" * 60] * 4) + ".tax.example.com",  # > 253 octets
        "x" * 5000,
        "",
    ],
)
def test_attack_malformed_names_are_refused(name: str) -> None:
    with pytest.raises(NameRefused):
        normalise_name(name)
    assert not allowed(name)


@pytest.mark.parametrize(
    "name",
    ["127.0.0.1", "10.0.0.1", "::1", "[::1]", "[2001:db8::1]", "2001:db8::1",
     "１２７.０.０.１", "127.1", "0x7f.0.0.1", "4294967295.4294967295"],
)  # fmt: skip
def test_attack_ip_literals_are_refused(name: str) -> None:
    with pytest.raises(NameRefused):
        normalise_name(name)


@pytest.mark.parametrize("name", ["com", "ir", "localhost", "*.com", "*.ir", "tax"])
def test_bare_top_level_domains_are_refused(name: str) -> None:
    with pytest.raises(NameRefused):
        normalise_name(name)


@pytest.mark.parametrize("name", [None, 7, b"tax.example.com", ["tax.example.com"], {"x": 1}])
def test_attack_non_strings_are_refused_not_crashed(name: object) -> None:
    assert [reason for _, reason in names_refused(POLICY, [name])] == [
        "a DNS name must be a string"
    ]


def test_an_entity_without_acme_domains_may_order_nothing() -> None:
    bare = ServicePolicy(
        service_code="n",
        title_fa="n",
        title_en="n",
        legal_basis="n",
        service_type="support",
        operations=frozenset(),
    )
    assert names_refused(bare, ["www.example.com"]) != []
    assert names_refused(bare, []) == []


def test_every_refused_name_is_named_once_in_order() -> None:
    names = ["www.tax.example.com", "evil.example.com", "*.*.tax.example.com", "x.tax.example.com"]
    assert [name for name, _ in names_refused(POLICY, names)] == [
        "evil.example.com",
        "*.*.tax.example.com",
    ]


# --- properties -----------------------------------------------------------------------


@given(st.text(max_size=300))
@example("tax.example.com.")
@example("*.tax.example.com")
@example("xn--bcher-kva.tax.example.com")
def test_normalised_names_are_one_strict_spelling(raw: str) -> None:
    try:
        name = normalise_name(raw)
    except NameRefused:
        return
    assert name == name.lower() and name.isascii()
    assert LDH_NAME.match(name), name
    base = name.removeprefix("*.")
    assert "*" not in base and not base.endswith(".")
    assert len(base) <= 253 and all(1 <= len(label) <= 63 for label in base.split("."))
    assert len(base.split(".")) >= 2
    assert normalise_name(name) == name  # idempotent: the normal form is a fixed point


@given(st.text(max_size=300))
def test_an_allowed_name_always_lies_in_the_policy_subtree(raw: str) -> None:
    if refusal([DOMAIN], raw) is None:
        base = normalise_name(raw).removeprefix("*.")
        assert base == DOMAIN or base.endswith("." + DOMAIN)


@given(st.lists(labels, min_size=0, max_size=4), st.booleans())
def test_names_under_the_domain_are_allowed(prefix: list[str], wildcard: bool) -> None:
    name = ".".join([*prefix, DOMAIN])
    assume(len(name) <= 251)
    assert allowed(("*." if wildcard else "") + name)


@given(labels, st.lists(labels, max_size=3))
def test_attack_glued_prefix_is_never_on_the_boundary(glued: str, above: list[str]) -> None:
    # "<glued>tax.example.com" ends with the domain's text but not at a label boundary.
    name = ".".join([*above, glued + DOMAIN])
    assert not allowed(name)
    assert not allowed("*." + name)


@given(labels, labels)
def test_attack_domain_as_a_prefix_of_another_name(tail: str, tld: str) -> None:
    assume(not tld.isdigit())
    assert not allowed(f"{DOMAIN}.{tail}.{tld}")
    assert not allowed(f"{DOMAIN}{tail}.{tld}")


@given(st.lists(labels, min_size=1, max_size=3))
def test_case_and_width_do_not_change_the_decision(prefix: list[str]) -> None:
    name = ".".join([*prefix, DOMAIN])
    assume(len(name) <= 253)
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in name)
    assert normalise_name(name.upper()) == normalise_name(full_width) == name


@given(st.lists(labels, min_size=2, max_size=4))
def test_attack_stacked_and_inner_wildcards(parts: list[str]) -> None:
    name = ".".join([*parts, DOMAIN])
    for attempt in (f"*.*.{name}", f"{parts[0]}.*.{DOMAIN}", f"*{name}", f"{parts[0]}*.{DOMAIN}"):
        with pytest.raises(NameRefused):
            normalise_name(attempt)


@given(st.text(min_size=1, max_size=40))
def test_is_under_needs_a_label_boundary(glue: str) -> None:
    assume("." not in glue)
    assert not is_under(glue + DOMAIN, DOMAIN)
    assert is_under(glue + "." + DOMAIN, DOMAIN)


# --- the [acme] table -----------------------------------------------------------------


def policy_document(**acme: object) -> dict[str, object]:
    return {
        "service_code": "x",
        "title_fa": "x",
        "title_en": "x",
        "legal_basis": "x",
        "type": "sovereign",
        "operations": ["identifiers.validate"],
        "acme": acme,
    }


def test_acme_domains_are_loaded_normalised() -> None:
    policy = parse_policy(policy_document(domains=["Tax.Example.COM", "bücher.example.net"]))
    assert policy.acme.domains == ("tax.example.com", "xn--bcher-kva.example.net")


@pytest.mark.parametrize(
    ("domains", "message"),
    [
        (["*.example.com"], "no wildcards"),
        (["ir"], "bare top-level"),
        (["com"], "bare top-level"),
        (["gov.ir"], "public suffix"),  # every agency's names would be this entity's
        (["ac.ir"], "public suffix"),
        (["co.uk"], "public suffix"),
        (["blogspot.com"], "public suffix"),  # the list's private section counts too
        (["xn--mgba3a4f16a.ir"], "public suffix"),
        (["tax.demo.example"], "public suffix list"),  # an Internal Name, never issuable
        (["intranet.local"], "public suffix list"),
        (["tax.example.com."], "trailing dot"),
        (["10.0.0.1"], "IP address"),
        (["_dmarc.example.com"], "underscore"),
        ([""], "empty"),
        ([7], "must be a string"),
    ],
)
def test_attack_policy_domains_that_would_grant_too_much_are_refused_at_load(
    domains: list[object], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(policy_document(domains=domains))


@pytest.mark.parametrize("table", [{"domains": "example.com"}, {"names": ["example.com"]}])
def test_a_malformed_acme_table_is_refused(table: dict[str, object]) -> None:
    with pytest.raises(PolicyError):
        parse_policy({**policy_document(), "acme": table})
    with pytest.raises(ValueError):
        parse_acme_table(["example.com"], "x")


def test_policies_without_acme_keep_their_document_and_digest() -> None:
    # The stored service-policy rows are refreshed by digest: adding the field
    # must not rewrite every policy that does not use ACME.
    document = policy_document()
    del document["acme"]
    plain = parse_policy(document)
    assert "acme" not in plain.to_document()
    assert parse_policy(policy_document()).digest == plain.digest  # an empty [acme] too
    with_acme = parse_policy(policy_document(domains=["tax.example.com"]))
    assert with_acme.to_document()["acme"] == {"domains": ["tax.example.com"]}
    assert with_acme.digest != plain.digest


def test_builtin_demo_policies_name_domains_the_ca_can_issue_for() -> None:
    policies = load_service_policies()
    with_acme = {code: p.acme.domains for code, p in policies.items() if p.acme.domains}
    assert with_acme["demo-tax-portal"] == ("tax.example.com",)
    for domains in with_acme.values():
        for domain in domains:
            assert check_dns_name(domain) == domain
            assert check_dns_name("*." + domain) == "*." + domain


@given(st.lists(labels, min_size=0, max_size=4), st.booleans(), st.booleans())
def test_allowed_names_are_what_the_ca_puts_in_a_certificate(
    prefix: list[str], wildcard: bool, upper: bool
) -> None:
    # The order's names go to the registration step as normalised: it must
    # take them as they are (ca.names is the issuance-side rule, PSL included).
    raw = ("*." if wildcard else "") + ".".join([*prefix, DOMAIN])
    assume(len(raw) <= 253)
    name = normalise_name(raw.upper() if upper else raw)
    assert allowed(name)
    assert check_dns_name(name) == name
