"""Shapes shared by every HTTP request model: strict bodies and bounded parameters.

A field a client sends that the model does not know is refused (422), never
ignored: a caller who sends ``validity_days`` believes it has an effect, and a
silent drop turns a typo into a certificate or an answer it did not ask for.
``tests/api/test_strict_request_models.py`` walks every route and fails when a
request model does not derive from :class:`StrictModel`.

Numbers taken from a path or a query are bounded in their schema: an integer
beyond 64 bits is a 422 with the field named, not an ``OverflowError`` in the
SQLite driver or a misleading "invalid characters" from PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

# SQL BIGINT, the widest integer both stores keep.
INT64_MAX = 2**63 - 1


class StrictModel(BaseModel):
    """The base of every request model: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


NonNegativeInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]

# RFC 3339 §5.6 date-time, offset required: Pydantic's lax mode would also take
# ``0.5`` or ``1700000000`` as seconds since the epoch, which no document allows.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z"
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time with offset, e.g. 2026-01-31T12:00:00Z")
    return value


DateTimeParam = Annotated[
    datetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A date-time from a query or a body: an RFC 3339 string with its offset, nothing else."""
