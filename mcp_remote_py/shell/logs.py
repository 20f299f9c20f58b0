"""The one logging setup: short lines on stderr, a rotating file, secrets redacted in both.

Desktop clients keep a server's stderr in their MCP logs (Claude Desktop: ``mcp-server-NAME.log``),
so stderr lines are short and say what happened. The file under the user log directory keeps more
detail across runs. Every line passes the redactor: header values the user gave, anything after
``Bearer``, and token-like query parameters never reach a log.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Redactor", "default_log_file", "setup_logging"]

LOGGER = "mcp_remote_py"
REDACTED = "***"
_PATTERNS = [
    re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)([?&](?:access_token|token|api[_-]?key|key|secret|password|code|client_secret)=)[^&\s]+"
    ),
    re.compile(
        r"(?i)((?:authorization|x-api-key|api-key|cookie)[\"']?\s*[:=]\s*[\"']?)[^\"',}\s]+"
    ),
]


class Redactor(logging.Formatter):
    """A formatter that removes known secrets and secret-shaped text from every record."""

    def __init__(self, fmt: str, secrets: Iterable[str] = (), datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(_keep_label, text)
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def _keep_label(match: re.Match[str]) -> str:
    # Keep the label ("Bearer", "?token=", "Authorization: "), drop the value.
    label = match.group(1)
    return f"{label}{' ' if label[-1:].isalnum() else ''}{REDACTED}"


def default_log_file() -> Path:
    from platformdirs import user_log_dir

    return Path(user_log_dir("mcp-remote-py", appauthor=False)) / "mcp-remote-py.log"


def setup_logging(
    level: str = "info", log_file: str | None = None, secrets: Iterable[str] = ()
) -> Path | None:
    """Configure the package logger; returns the log file in use (None if it could not open)."""
    secrets = list(secrets)
    logger = logging.getLogger(LOGGER)
    logger.handlers.clear()
    logger.propagate = False
    numeric = getattr(logging, level.upper())
    logger.setLevel(min(numeric, logging.INFO))
    logging.raiseExceptions = False  # a log line must never take the relay down

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(numeric)
    stderr.setFormatter(Redactor("mcp-remote-py: %(message)s", secrets))
    logger.addHandler(stderr)

    path = Path(log_file) if log_file else default_log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8", delay=True
        )
    except OSError as exc:
        logger.warning("cannot write the log file %s (%s); logging to stderr only", path, exc)
        return None
    handler.setLevel(min(numeric, logging.INFO))
    handler.setFormatter(Redactor(f"%(asctime)s {os.getpid()} %(levelname)s %(message)s", secrets))
    logger.addHandler(handler)
    return path
