"""axe-core (Deque's accessibility engine, from npm) run inside a Playwright page.

Issue 15 asks that no console or login page have a serious or critical
violation. ``assert_accessible(page, label)`` saves a screenshot of the page
and fails with every such violation's rule id, what it asks for and the
elements it found; the console's browser tests call it the same way.

axe-core is pinned in tests/browser/axe/package-lock.json and installed on
first use (tests/node_support.py); without npm or the registry the test is
skipped with the reason, never passed.

Injection and the CSP: ``page.add_script_tag(path=...)`` inserts the file as an
inline script, which the pages' Content-Security-Policy refuses (no
'unsafe-inline'). The fallback evaluates the same file through the DevTools
protocol, which the CSP does not govern. Playwright's ``bypass_csp=True`` would
also let it in, but it switches the whole policy off for the page, so an
inline style the real page never gets would be painted and judged; with the
policy left on, axe sees what a citizen's browser shows.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node_support import node_with

AXE_FOLDER = Path(__file__).parent / "axe"
AXE_SCRIPT = AXE_FOLDER / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = frozenset({"serious", "critical"})
SCREENSHOTS_ENV = "HOVIYAT_SCREENSHOTS"

# Every rule axe runs by default (WCAG 2.0-2.2 A/AA and its best practices);
# only the impact decides what fails.
RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    rule: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.map(n => n.target.join(' ')),
  }));
}"""


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        shown = ", ".join(self.targets[:5]) + (" …" if len(self.targets) > 5 else "")
        return f"{self.rule} ({self.impact}): {self.help} — {shown}"


def axe_script() -> Path:
    """axe.min.js, installed from tests/browser/axe's lock file the first time."""
    if not AXE_SCRIPT.is_file():
        # pytest-xdist workers start at once: one installs, the others wait for it.
        lock = Path(tempfile.gettempdir()) / "hoviyat-axe-core-install.lock"
        with lock.open("w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            if not AXE_SCRIPT.is_file():
                node_with(AXE_FOLDER, "axe-core")
    return AXE_SCRIPT


def _inject(page: Any, script: Path) -> None:
    from playwright.sync_api import Error

    if page.evaluate("typeof window.axe !== 'undefined'"):
        return
    try:
        page.add_script_tag(path=str(script))
    except Error as refused:
        if "Content Security Policy" not in str(refused):
            raise
        # See the module docstring: evaluate rather than bypass_csp, so the
        # page keeps the policy it is served with.
        page.evaluate(script.read_text(encoding="utf-8"))


def violations(page: Any) -> list[Violation]:
    """Every violation axe finds on ``page`` as it is now, whatever its impact."""
    _inject(page, axe_script())
    found = page.evaluate(RUN)
    return [Violation(v["rule"], v["impact"], v["help"], tuple(v["targets"])) for v in found]


def blocking_violations(page: Any) -> list[Violation]:
    """The serious and critical violations axe finds on ``page`` as it is now."""
    return [v for v in violations(page) if v.impact in BLOCKING]


# axe does not test reflow (WCAG 1.4.10): at 390 px nothing may push the page
# sideways. Names the innermost elements that stick out of the viewport.
SIDEWAYS = """() => {
  const root = document.documentElement;
  if (root.scrollWidth <= root.clientWidth) return null;
  const overflowing = (element) => {
    const box = element.getBoundingClientRect();
    if (box.right > root.clientWidth + 1 || box.left < -1) return true;
    const own = element.scrollWidth > element.clientWidth + 1;
    return own && getComputedStyle(element).overflowX === 'visible';
  };
  const out = [];
  for (const element of document.body.querySelectorAll('*')) {
    if (overflowing(element) && !Array.from(element.children).some(overflowing)) {
      out.push(element.tagName.toLowerCase() + (element.id ? '#' + element.id : ''));
    }
  }
  return {page: root.scrollWidth, viewport: root.clientWidth, elements: out.slice(0, 5)};
}"""


def sideways_scroll(page: Any) -> str | None:
    """Why the page scrolls sideways, or None when it reflows into the viewport."""
    found = page.evaluate(SIDEWAYS)
    if found is None:
        return None
    return (
        f"reflow (WCAG 1.4.10): the page is {found['page']} px wide in a "
        f"{found['viewport']} px viewport — {', '.join(found['elements'])}"
    )


def screenshot_folder(default: Path) -> Path:
    """Where screenshots go: $HOVIYAT_SCREENSHOTS if set (to keep them), else ``default``."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _file_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") + ".png"


def audit(page: Any, label: str, screenshots: Path | None = None) -> list[str]:
    """Screenshot ``page`` (when ``screenshots`` is given); one line per blocking violation.

    ``label`` names the page in the lines and the screenshot's file, e.g.
    ``"login-otp-fa-390"``; a journey over many pages can gather them all
    before failing, so one run names every broken page.
    """
    if screenshots is not None:
        page.screenshot(path=str(screenshots / _file_name(label)), full_page=True)
    found = [str(violation) for violation in blocking_violations(page)]
    sideways = sideways_scroll(page)
    if sideways is not None:
        found.append(sideways)
    return [f"{label} ({page.url}): {line}" for line in found]


def assert_accessible(page: Any, label: str, screenshots: Path | None = None) -> None:
    """Fail with each serious or critical violation's rule id on ``page``, or on
    a page that scrolls sideways (see :func:`audit`)."""
    found = audit(page, label, screenshots)
    assert not found, "\n".join(found)
