"""Custom request headers from ``--header`` and ``--header-file``, with ``${VAR}`` expansion.

Pure functions: the environment is passed in. A token written as ``${API_TOKEN}`` in a desktop
client's config stays out of the config file and out of the process list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import UsageError

__all__ = ["expand_variables", "join_split_header_args", "parse_header", "parse_header_file"]

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# RFC 9110 §5.1: a field name is a token.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the transport owns; letting a user set them would break the protocol.
_RESERVED = {"content-type", "content-length", "accept", "mcp-session-id", "host", "last-event-id"}


def expand_variables(text: str, environ: Mapping[str, str], where: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise UsageError(
                f"{where} uses ${{{name}}} but the environment variable {name} is not set; "
                f'set it in the "env" block of your MCP client\'s config, or export it'
            )
        return environ[name]

    return _VARIABLE.sub(substitute, text)


def parse_header(text: str, environ: Mapping[str, str], where: str = "--header") -> tuple[str, str]:
    """``'Name: value'`` (the space is optional) → ``(name, expanded value)``."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"{where} {text!r} is not of the form 'Name: value'")
    if not _TOKEN.match(name):
        raise UsageError(f"{where}: {name!r} is not a valid HTTP header name")
    if name.lower() in _RESERVED:
        raise UsageError(f"{where}: the relay sets {name} itself; it cannot be overridden")
    value = expand_variables(value.strip(), environ, f"{where} {name}")
    if "\r" in value or "\n" in value:
        raise UsageError(f"{where} {name}: the value may not contain a line break")
    # RFC 9110 §5.5: visible ASCII, space and tab. HTTP libraries refuse anything else when
    # they send it, which would stop the relay at start; say so now, without the value.
    bad = next((c for c in value if not (c == "\t" or " " <= c <= "~")), None)
    if bad is not None:
        kind = "a non-ASCII character" if ord(bad) > 0x7F else "a control character"
        raise UsageError(
            f"{where} {name}: the value contains {kind} (U+{ord(bad):04X}), which an HTTP "
            "header cannot carry; check for a pasted typographic quote or dash, or "
            "percent-encode the value if the server expects that"
        )
    return name, value


def parse_header_file(content: str, environ: Mapping[str, str], path: str) -> list[tuple[str, str]]:
    """One ``Name: value`` a line; blank lines and lines starting with ``#`` are skipped."""
    headers = []
    for number, line in enumerate(content.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            headers.append(parse_header(stripped, environ, f"{path}:{number}"))
    return headers


def join_split_header_args(argv: list[str]) -> list[str]:
    """Undo a client that split ``--header "Name: value"`` on the space into two arguments.

    Cursor on Windows passes ``--header``, ``Name:``, ``value``; without this the value would be
    taken for the server URL. Only a header argument that ends in ``:`` is joined with the next.
    """
    joined: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        joined.append(arg)
        if arg == "--header" and index + 2 < len(argv):
            value, following = argv[index + 1], argv[index + 2]
            if value.endswith(":") and not following.startswith("-") and "://" not in following:
                joined.append(f"{value} {following}")
                index += 3
                continue
        index += 1
    return joined
