"""ASGI entry point for uvicorn workers: ``uvicorn idp.asgi:app``."""

from idp.app import create_app
from idp.logging import configure_logging
from idp.settings import get_settings

configure_logging(get_settings().log_level)
app = create_app()
