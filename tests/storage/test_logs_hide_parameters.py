"""A failed statement's error and its logged traceback name the SQL, never its values.

Parameters are tracking codes, subject hashes and token digests: an error log
that printed them would undo the audit log's pepper.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from idp.storage.engine import Database

SECRET = "SUBJECT-HASH-7f3a9c0e"


def test_attack_sql_parameters_harvested_from_error_logs_find_none(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("hoviyat.test")
    with pytest.raises(SQLAlchemyError) as raised:
        with db.session() as session:
            # A statement that fails after binding its parameter.
            session.execute(
                text("INSERT INTO no_such_table (value) VALUES (:value)"), {"value": SECRET}
            )
    log.exception("write failed", exc_info=raised.value)
    assert "no_such_table" in str(raised.value)  # the statement is still named
    assert SECRET not in str(raised.value)
    assert SECRET not in caplog.text
