"""Logging: plain text, or one JSON object per line with LOG_FORMAT=json
(docs/operations.md, "Logs").

The socket lifecycle (connect accepted or refused, join, leave, close) and
each delivered reveal are one line each, on the loggers `envelope.sockets`
and `envelope.reveals`, never one per frame. Their fields (`event`,
`socket_id`, `code`, ...) are JSON keys in JSON and `key=value` pairs after
the message in text, so both read the same.

Named logs.py, not logging.py: `config.logging` would read as the standard
library's module wherever it is imported.
"""

from __future__ import annotations

import logging
from typing import Any

FORMATS = ("text", "json")

socket_logger = logging.getLogger("envelope.sockets")
reveal_logger = logging.getLogger("envelope.reveals")


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """Django's LOGGING for LOG_FORMAT ("text" or "json") and LOG_LEVEL."""
    log_format = (log_format or "text").strip().lower()
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if log_format == "json":
        # Python warnings (a missing static directory, deprecations) would be
        # printed as bare text: through logging they are JSON lines too.
        logging.captureWarnings(True)
    formatters: dict[str, Any] = {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            # Tracebacks stay inside the one line, as the "exc_info" key.
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.channels.server": {"level": "WARNING"},
            "daphne": {"level": "WARNING"},
        },
    }


def _line(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    pairs = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
    logger.info("%s %s", message, pairs, extra=fields)


def socket_event(event: str, **fields: Any) -> None:
    """One line of a socket's lifecycle: event is connect, refuse, join,
    join_refused, leave or close; fields as docs/operations.md lists them."""
    _line(socket_logger, f"socket {event}", {"event": event, **fields})


def reveal_delivered(**fields: Any) -> None:
    """One line per delivered event message (a reveal) on this process."""
    _line(reveal_logger, "reveal delivered", {"event": "reveal", **fields})
