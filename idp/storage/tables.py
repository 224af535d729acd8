"""Imports every module that defines tables, so metadata and migrations see them all.

A feature that adds tables adds its module here (one line) and an Alembic
revision on its own branch (``down_revision = "0001"``, its own
``branch_labels``); ``hoviyat db upgrade`` applies all heads.
"""

from idp.storage import models  # noqa: F401
from idp.storage import login  # noqa: F401
from idp.storage import certificates  # noqa: F401
from idp.storage import crls  # noqa: F401
from idp.storage import oidc  # noqa: F401
from idp.storage import audit_log  # noqa: F401
from idp.storage import attestations  # noqa: F401
from idp.storage import reconciliations  # noqa: F401
