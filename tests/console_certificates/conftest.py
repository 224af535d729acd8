"""Certificates console fixtures: the real app over ASGI, its CA made, people to sign in."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ca"))

from console_fixtures import browser, ca_ready, other_browser, people

__all__ = ["browser", "ca_ready", "other_browser", "people"]
