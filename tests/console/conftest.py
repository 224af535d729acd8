"""Console fixtures: the real app over ASGI, and people from the synthetic registry."""

from __future__ import annotations

from console_fixtures import browser, other_browser, people

__all__ = ["browser", "other_browser", "people"]
