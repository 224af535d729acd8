"""Direct routes on and off (``HOVIYAT_DIRECT_ROUTES``).

A module that sets ``BOTH_ROUTINGS`` (True, or the names of some of its tests)
runs those tests twice: with the direct routes answering the busiest paths
(``direct``) and with every request left to FastAPI's router (``router``), so
the two ways cannot drift apart. Every other test runs with the default, on.
"""

from __future__ import annotations

import pytest

from idp.settings import Settings


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chosen = getattr(metafunc.module, "BOTH_ROUTINGS", False)
    if chosen is not True and metafunc.function.__name__ not in (chosen or ()):
        return
    if "direct_routes" in metafunc.fixturenames:
        metafunc.parametrize("direct_routes", [True, False], ids=["direct", "router"])


@pytest.fixture
def direct_routes() -> bool:
    return True


@pytest.fixture
def hoviyat_settings(hoviyat_settings: Settings, direct_routes: bool) -> Settings:
    return hoviyat_settings.model_copy(update={"direct_routes": direct_routes})
