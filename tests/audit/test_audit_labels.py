"""Every event type and outcome the code can append has a Persian and an English label.

A citizen reads their access history in words, not in identifiers such as
``authorization_code_issued``. The values are enumerated from the source
itself (every ``event_type``/``outcome`` handed to an audit event, directly or
through the helpers that build one, and the enums and literals that feed
them), so a new event type without labels fails here, not in front of a citizen.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

import pytest

from idp.audit.labels import EVENT_LABELS, OUTCOME_LABELS, label
from idp.login.otp import OtpOutcome
from idp.reconciliation.rows import Outcome as ReconciliationOutcome

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("idp", "ca", "verifiers", "policies")
FIELDS = ("event_type", "outcome")
PERSIAN = re.compile(r"[\u0600-\u06FF]")
# Outcomes that reach the audit log through values rather than literals at the call.
THROUGH_VALUES = {
    "outcome": {
        *(f"otp_{member.value}" for member in OtpOutcome),  # login/pages.py: f"otp_{...}"
        *get_args(ReconciliationOutcome),  # reconciliation rows' own outcome
    }
}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for top in SOURCES:
        for path in (ROOT / top).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if relative.as_posix() == "idp/audit/labels.py":
                continue
            name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def _audit_builders(tree: ast.Module) -> dict[str, dict[str, int]]:
    """Where a module's callables take an event type or outcome positionally.

    A function with such a parameter hands it on to an audit event (the helpers
    ``person_event``, ``grant_event``, ``_audit``...); a class counts only with
    both fields, as ``AuditEvent`` has (a report's ``Check.outcome`` is not one).
    """
    builders: dict[str, dict[str, int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = [a.arg for a in node.args.posonlyargs + node.args.args]
            if names[:1] in (["self"], ["cls"]):
                names = names[1:]
        elif isinstance(node, ast.ClassDef):
            names = [
                s.target.id
                for s in node.body
                if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
            ]
            if not all(field in names for field in FIELDS):
                continue
        else:
            continue
        positions = {field: names.index(field) for field in FIELDS if field in names}
        if positions:
            builders.setdefault(node.name, {}).update(positions)
    return builders


def _strings(expression: ast.expr) -> set[str]:
    return {
        n.value
        for n in ast.walk(expression)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value
    }


def _prefixes(expression: ast.expr) -> set[str]:
    """Constant heads of f-strings: they must be enumerated in THROUGH_VALUES."""
    return {
        n.values[0].value
        for n in ast.walk(expression)
        if isinstance(n, ast.JoinedStr)
        and n.values
        and isinstance(n.values[0], ast.Constant)
        and isinstance(n.values[0].value, str)
    }


def appended_values() -> dict[str, dict[str, set[str]]]:
    """field -> value -> modules, for every literal the code hands an audit event."""
    modules = _modules()
    local = {name: _audit_builders(tree) for name, tree in modules.items()}
    found: dict[str, dict[str, set[str]]] = {field: {} for field in FIELDS}
    prefixes: dict[str, set[str]] = {field: set() for field in FIELDS}
    for module, tree in modules.items():
        builders = dict(local[module])
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in local:
                for alias in node.names:
                    if alias.name in local[node.module]:
                        builders[alias.asname or alias.name] = local[node.module][alias.name]
        for node in ast.walk(tree):
            hits: list[tuple[str, ast.expr]] = []
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                hits += [(kw.arg, kw.value) for kw in node.keywords if kw.arg in FIELDS]
                for field, index in builders.get(name or "", {}).items():
                    if index < len(node.args):
                        hits.append((field, node.args[index]))
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    name = target.id if isinstance(target, ast.Name) else None
                    if name in FIELDS:
                        hits.append((name, node.value))
                    elif name and name.startswith("EVENT_"):
                        hits.append(("event_type", node.value))
            for field, expression in hits:
                for value in _strings(expression) - _prefixes(expression):
                    found[field].setdefault(value, set()).add(module)
                prefixes[field] |= _prefixes(expression)
    for field, heads in prefixes.items():
        for head in heads:
            expanded = {v for v in THROUGH_VALUES.get(field, set()) if v.startswith(head)}
            assert expanded, f"{field} f-string {head!r}... is not enumerated in THROUGH_VALUES"
    for field, values in THROUGH_VALUES.items():
        for value in values:
            found[field].setdefault(value, set()).add("(through values)")
    # Verification routes decide ("match" | "no_match", answer): the outcome the recorder appends.
    routes = modules["idp.verification.routes"]
    for node in ast.walk(routes):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
            for value in _strings(node.value.elts[0]):
                found["outcome"].setdefault(value, set()).add("idp.verification.routes")
    return found


VALUES = appended_values()
TABLES = {"event_type": EVENT_LABELS, "outcome": OUTCOME_LABELS}


def test_the_enumeration_finds_what_the_access_history_showed_raw() -> None:
    assert {"authorization_code_issued", "attestation.verified", "login", "verification"} <= set(
        VALUES["event_type"]
    )
    assert {"granted", "valid", "invalid", "match", "otp_wrong"} <= set(VALUES["outcome"])


@pytest.mark.parametrize(
    ("field", "value"),
    sorted((field, value) for field, values in VALUES.items() for value in values),
)
def test_every_appended_value_has_a_persian_and_an_english_label(field: str, value: str) -> None:
    table = TABLES[field]
    assert value in table, f"{field} {value!r} (from {sorted(VALUES[field][value])}) has no labels"
    labels = label(table, value)
    assert PERSIAN.search(labels["fa"]), labels
    assert labels["en"] and labels["en"] != value and not PERSIAN.search(labels["en"]), labels


# --- the citizen's page ---------------------------------------------------------------------

CITIZEN = "0499370899"


@pytest.fixture
def citizen_browser(hoviyat_app, app_client):
    """A browser holding the citizen's Hoviyat login, with lookups of them in the log."""
    from idp.audit.log import AuditEvent, append, subject_hash
    from idp.login.sessions import cookie_name, start_session
    from idp.tracking import new_tracking_code

    hoviyat = hoviyat_app.state.hoviyat
    pepper = hoviyat.secrets.subject_pepper
    with hoviyat.db.session() as session:
        for event_type, outcome in [
            ("authorization_code_issued", "ok"),
            ("consent", "granted"),
            ("attestation.verified", "invalid"),
            ("login", "otp_wrong"),
        ]:
            append(
                session,
                AuditEvent(
                    tracking_code=new_tracking_code(),
                    event_type=event_type,
                    actor_type="client",
                    actor_id="demo-bank",
                    outcome=outcome,
                    subject_hash=subject_hash(pepper, CITIZEN),
                ),
            )
        _, token = start_session(
            session,
            national_code=CITIZEN,
            acr="http://eidas.europa.eu/LoA/substantial",
            amr=["kba", "sms"],
            tracking_code=new_tracking_code(),
            ttl_seconds=600,
        )
    app_client.cookies.set(cookie_name(hoviyat.settings), token)
    return app_client


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_citizen_history_page_names_every_event_and_outcome_in_words(
    citizen_browser, lang: str
) -> None:
    page = citizen_browser.get("/login/history", params={"lang": lang})
    assert page.status_code == 200, page.text
    for raw in ("authorization_code_issued", "attestation.verified", "granted", "invalid"):
        assert f">{raw}<" not in page.text
    for event_type in ("authorization_code_issued", "consent", "attestation.verified", "login"):
        assert label(EVENT_LABELS, event_type)[lang] in page.text
    for outcome in ("ok", "granted", "invalid", "otp_wrong"):
        assert label(OUTCOME_LABELS, outcome)[lang] in page.text


def test_citizen_history_page_needs_the_citizen_login_and_a_real_cursor(
    app_client, citizen_browser
) -> None:
    assert citizen_browser.get("/login/history", params={"before": "x1"}).status_code == 400
    assert citizen_browser.get("/login/history", params={"before": "999999"}).status_code == 400
    citizen_browser.cookies.clear()
    assert citizen_browser.get("/login/history").status_code == 401
