"""Fixtures for the auditors' console pages: the real app, a browser, registry people."""

from __future__ import annotations

import sys
from pathlib import Path

# The console's sign-in helpers (tests/console/console_support.py) drive the real OIDC flow.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))

from console_fixtures import browser, people

__all__ = ["browser", "people"]
