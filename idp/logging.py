"""Structured logs: one JSON object per line on stderr, without identifiers.

National codes, legal-entity identifiers and mobile numbers must never reach
a log line: the audit log stores them only as peppered hashes, and a server
log holding them in clear would undo that. Two layers keep them out:

1. the libraries that log request lines (httpx, httpcore: "HTTP Request:
   POST http://...") are held at WARNING, so their per-request lines are not
   written at all (the registry contract also keeps identifiers out of URLs);
2. :class:`RedactingFilter` on the handler, as defence in depth, replaces
   any standalone run of 10 to 14 digits (any digit script, single spaces,
   dashes or invisible characters between them, an optional ``+`` or ``00``
   prefix) with ``[redacted]``: national codes (10), national identifiers and
   mobile numbers ``09XXXXXXXXX`` (11), ``989XXXXXXXXX`` / ``+98...`` (12+).
   Runs glued to letters (tracking codes, hashes) are left alone.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
REDACTED = "[redacted]"
# Libraries that log one line per outgoing request, URL included.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "urllib3")
_DIGIT = "[0-9\u06f0-\u06f9\u0660-\u0669]"
_SEPARATOR = "[ \\-\u200b-\u200f\u061c\u202a-\u202e\u2066-\u2069\ufeff]"
_IDENTIFIER = re.compile(rf"(?<!\w)(?:\+|00)?{_DIGIT}(?:{_SEPARATOR}?{_DIGIT}){{9,13}}(?!\w)")


def redact(text: str) -> str:
    """``text`` with every national code, national identifier and mobile number replaced."""
    return _IDENTIFIER.sub(REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, extras and traceback without identifiers; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD:
                setattr(record, key, _redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
