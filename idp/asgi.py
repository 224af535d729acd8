"""ASGI entry point for uvicorn workers: ``uvicorn idp.asgi:app``."""

import gc

from idp.app import create_app
from idp.logging import configure_logging
from idp.settings import get_settings

settings = get_settings()
configure_logging(settings.log_level)
app = create_app(settings)

# The start-up heap (modules, policies, keys) never becomes garbage: move it
# out of the collector's sight, and collect the young generation less often,
# so that full collections stop adding tens of milliseconds to random requests.
gc.collect()
gc.freeze()
gc.set_threshold(20_000, 20, 20)
