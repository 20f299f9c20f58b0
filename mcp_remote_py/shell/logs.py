"""The one logging setup: short lines on stderr, a rotating file, secrets redacted in both.

Desktop clients keep a server's stderr in their MCP logs (Claude Desktop: ``mcp-server-NAME.log``),
so stderr lines are short and say what happened. The file under the user log directory keeps more
detail across runs; it and its rotated copies are 0600, in a directory made 0700. Every line
passes the redactor (``redact``): header values the user gave, the credential after ``Bearer``,
``Basic`` or ``token`` (not a word of prose: "store a token with …" stays as written), credential
headers' values and token-like query parameters never reach a log. Text from a server that goes
to the client (an error's excerpt of the body) is to pass through ``redact`` too.

The log directory is the first one a run makes, so this module also holds the one way the
project makes a directory of its own (``private_directory``: every missing component 0700) and
the one check of a directory where it keeps credentials or state (``check_directory``: one
warning when other users may change what is in it). The credential store and the lock files use
them too (``auth/``), as anything in the shell may.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable
from contextlib import suppress
from io import TextIOWrapper
from pathlib import Path

__all__ = [
    "Redactor",
    "check_directory",
    "default_log_file",
    "private_directory",
    "redact",
    "setup_logging",
]

LOGGER = "mcp_remote_py"
REDACTED = "***"
# A credential's characters (RFC 6750 b64token, RFC 7235 token68).
_VALUE = r"[A-Za-z0-9._~+/-]+=*"
# A word after "token" or an auth scheme (but not after "token=") that is prose, not a
# credential: letters (one capital first at most, hyphenated parts allowed), shorter than any
# token a server issues. "store a token with `auth set`" and "the token endpoint." keep their
# words; "Bearer eyJ…", "token 3f9a…", "token=abc" and "Basic dXNl…" lose their values.
_WORD = re.compile(r"[A-Z]?[a-z]+(?:-[a-z]+)*")
_LONGEST_WORD = 15
_SCHEMES = r"bearer|basic|token|dpop|negotiate"
_AFTER_LABEL = re.compile(rf"(?i)\b({_SCHEMES})(\s+|\s*[:=]\s*)({_VALUE})")
_PATTERNS = [
    re.compile(
        r"(?i)([?&](?:access_token|token|api[_-]?key|key|secret|password|code|client_secret)=)[^&\s]+"
    ),
    # The value of a header named like a credential, whatever it looks like, after the auth
    # scheme if there is one (kept); a ${VAR} reference is no secret and stays.
    re.compile(
        rf"(?i)((?:authorization|x-api-key|api-key|cookie)[\"']?\s*[:=]\s*[\"']?"
        rf"(?!(?:(?:{_SCHEMES})\s+)?\$\{{)(?:(?:{_SCHEMES})\s+)?)[^\"',}}\s]+"
    ),
]
_secrets: list[str] = []


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` without secrets: ``secrets`` (default: the header values ``setup_logging`` was
    given) and secret-shaped values (after ``Bearer``, ``Basic`` or ``token``, token-like query
    parameters, credential headers), each replaced by ``***``; the words around them stay.

    Log lines pass through it, and so must any other text that leaves the process with what a
    server sent in it (an error excerpt given to the client).
    """
    for secret in _secrets if secrets is None else _known(secrets):
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(_keep_label, text)
    return _AFTER_LABEL.sub(_value_after_label, text)


def _known(secrets: Iterable[str]) -> list[str]:
    # Longest first, so a secret that contains another goes whole; short ones would hit prose.
    return sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)


class Redactor(logging.Formatter):
    """A formatter that removes known secrets and secret-shaped text from every record."""

    def __init__(self, fmt: str, secrets: Iterable[str] = (), datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)
        self.secrets = _known(secrets)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def _value_after_label(match: re.Match[str]) -> str:
    label, gap, value = match.groups()
    word = value.rstrip(".=")
    if "=" not in gap and len(word) <= _LONGEST_WORD and _WORD.fullmatch(word):
        return match.group(0)  # prose: "token with", "Bearer realm=", "token endpoint."
    return f"{label}{gap}{REDACTED}"


def _keep_label(match: re.Match[str]) -> str:
    # Keep the label ("?token=", "Authorization: Bearer "), drop the value.
    label = match.group(1)
    return f"{label}{' ' if label[-1:].isalnum() else ''}{REDACTED}"


# --------------------------------------------------------------------------- our directories

_warned_directories: set[str] = set()


def private_directory(path: Path, warn: Callable[[str], None] | None = None) -> None:
    """Make ``path`` a directory, creating each missing component (parents too) 0700.

    ``Path.mkdir(parents=True, mode=0o700)`` gives only the last component that mode and makes
    the parents 0777 minus the umask (0755 as a rule): the user state directory, made first by
    a lock file under it, came out readable by everyone. An existing directory is left as it is;
    with ``warn``, it is checked as ``check_directory`` does.
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:  # another process made it meanwhile
            if not directory.is_dir():
                raise
    if warn is not None and not missing:
        check_directory(path, warn)


def check_directory(path: Path, warn: Callable[[str], None]) -> None:
    """``warn`` hears, once per directory and process, that other users may change the files in
    ``path`` (it is group- or world-writable), with the ``chmod`` that stops them."""
    if sys.platform == "win32" or str(path) in _warned_directories:
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o022:
        _warned_directories.add(str(path))
        warn(
            f"{path} can be changed by other users (mode {mode & 0o7777:04o}), and mcp-remote-py "
            f"keeps credentials or state there; run: chmod 700 {shlex.quote(str(path))}"
        )


# --------------------------------------------------------------------------- the log file


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file created 0600 (``os.open`` with that mode), as is each new file after a
    rotation; the rotated ones are renamed, so they keep it. A file an older mcp-remote-py left
    readable by others is narrowed when opened."""

    def _open(self) -> TextIOWrapper:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        fd = os.open(self.baseFilename, flags, 0o600)
        try:
            if sys.platform != "win32":
                _narrow(self.baseFilename, fd)
                for number in range(1, self.backupCount + 1):
                    _narrow(f"{self.baseFilename}.{number}")
            return open(fd, "a", encoding=self.encoding, errors=self.errors)
        except BaseException:
            os.close(fd)
            raise


def _narrow(path: str, fd: int | None = None) -> None:
    with suppress(OSError):
        mode = (os.fstat(fd) if fd is not None else os.stat(path)).st_mode & 0o777
        if mode & 0o077:
            if fd is not None:
                os.fchmod(fd, 0o600)
            else:
                os.chmod(path, 0o600)


def default_log_file() -> Path:
    from platformdirs import user_log_dir

    return Path(user_log_dir("mcp-remote-py", appauthor=False)) / "mcp-remote-py.log"


def setup_logging(
    level: str = "info", log_file: str | None = None, secrets: Iterable[str] = ()
) -> Path | None:
    """Configure the package logger; returns the log file in use (None if it could not open)."""
    secrets = list(secrets)
    _secrets[:] = _known(secrets)
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
        private_directory(path.parent)
        handler = _PrivateRotatingFileHandler(
            path, maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8", delay=True
        )
    except OSError as exc:
        logger.warning("cannot write the log file %s (%s); logging to stderr only", path, exc)
        return None
    handler.setLevel(min(numeric, logging.INFO))
    handler.setFormatter(Redactor(f"%(asctime)s {os.getpid()} %(levelname)s %(message)s", secrets))
    logger.addHandler(handler)
    return path
