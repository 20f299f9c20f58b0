"""Finding and reading Claude Desktop's ``claude_desktop_config.json``.

``default_config_path`` is where this OS keeps it. ``load_config`` never raises: a missing,
unreadable or broken file comes back as a ``Loaded`` with the error, and a JSON syntax error
carries its line, column and likely cause (a trailing comma, a comment, single quotes, a lone
backslash in a Windows path). ``NaN``, ``Infinity`` and ``-Infinity``, which Python's ``json``
takes but JSON (and Claude Desktop) does not, are such errors too.

To write a file back without changing what the user wrote, ``load_config(exact_numbers=True)``
keeps each number as its text (a ``JsonNumber``: ``1e400`` stays ``1e400``, not ``Infinity``;
``1.50`` stays ``1.50``), and ``dump_config`` writes the data as
``json.dumps(indent=2, ensure_ascii=False)`` would, with those numbers as they were read.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_NAME = "claude_desktop_config.json"


def default_config_path(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> Path:
    """This OS's ``claude_desktop_config.json`` (it may not exist)."""
    env = os.environ if environ is None else environ
    platform = platform or sys.platform
    home = Path(env.get("HOME") or env.get("USERPROFILE") or os.path.expanduser("~"))
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / CONFIG_NAME
    if platform == "win32":
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
        return base / "Claude" / CONFIG_NAME
    xdg = env.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else home / ".config") / "Claude" / CONFIG_NAME


@dataclass(frozen=True)
class JsonNumber:
    """A JSON number as the file spells it, so that writing it back gives the same text."""

    text: str

    def __float__(self) -> float:
        return float(self.text)


class _NonStandardConstant(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _refuse_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


# A string (skipped: the words may be inside one) or one of the constants json would take.
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.DOTALL)


def _where(text: str, name: str) -> tuple[int | None, int | None]:
    """Line and column of the first ``name`` outside a string: the one the parser met, since
    everything before it parsed."""
    for match in _STRING_OR_CONSTANT.finditer(text):
        if match.group(1) == name:
            position = match.start(1)
            line = text.count("\n", 0, position) + 1
            return line, position - (text.rfind("\n", 0, position) + 1) + 1
    return None, None


def dump_config(data: object) -> str:
    """``data`` as ``json.dumps(data, indent=2, ensure_ascii=False)`` writes it, each
    ``JsonNumber`` as the text it was read as; no trailing newline."""
    out: list[str] = []
    _dump(data, 0, out)
    return "".join(out)


def _dump(value: object, depth: int, out: list[str]) -> None:
    if isinstance(value, JsonNumber):
        out.append(value.text)
        return
    if isinstance(value, dict):
        items: list[tuple[str | None, object]] = [(_key(k), v) for k, v in value.items()]
        opening, closing = "{", "}"
    elif isinstance(value, (list, tuple)):
        items = [(None, v) for v in value]
        opening, closing = "[", "]"
    else:
        out.append(json.dumps(value, ensure_ascii=False, allow_nan=False))
        return
    if not items:
        out.append(opening + closing)
        return
    inner = "\n" + "  " * (depth + 1)
    out.append(opening)
    for index, (key, item) in enumerate(items):
        out.append(("," if index else "") + inner)
        if key is not None:
            out.append(json.dumps(key, ensure_ascii=False) + ": ")
        _dump(item, depth + 1, out)
    out.append("\n" + "  " * depth + closing)


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"a JSON object key must be a string, not {type(key).__name__}")
    return key


@dataclass
class Loaded:
    """A config file as read: ``data`` when it parsed, else ``error`` (with line and column)."""

    path: Path
    exists: bool
    data: dict[str, Any] | None = None
    error: str | None = None
    line: int | None = None
    column: int | None = None
    bom: bool = False


def _syntax_hint(text: str, message: str, position: int) -> str:
    before = text[:position].rstrip()
    if message.startswith("Expecting property name") and before.endswith(","):
        return "a comma before a closing brace (JSON allows no trailing comma)"
    if message.startswith("Expecting value") and before.endswith(","):
        return "a comma before a closing bracket (JSON allows no trailing comma)"
    if text[position : position + 2] in ("//", "/*"):
        return "a comment (JSON has no comments)"
    if text[position : position + 1] == "'":
        return "single quotes (JSON strings take double quotes)"
    if message.startswith("Invalid \\escape"):
        return r"a single backslash (in JSON a Windows path needs \\ for each \)"
    return ""


def load_config(path: Path, *, exact_numbers: bool = False) -> Loaded:
    """Read and parse ``path``; never raises for a missing or broken file. With
    ``exact_numbers``, every number in ``data`` is a ``JsonNumber`` (for ``dump_config``)."""
    if not path.exists():
        return Loaded(path, exists=False)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Loaded(path, exists=True, error=f"cannot be read: {exc.strerror or exc}")
    bom = raw.startswith(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Loaded(path, exists=True, error=f"is not UTF-8 text (byte {exc.start})", bom=bom)
    if not text.strip():
        return Loaded(path, exists=True, error="is empty (Claude Desktop needs at least {})")
    numbers: dict[str, Any] = (
        {"parse_float": JsonNumber, "parse_int": JsonNumber} if exact_numbers else {}
    )
    try:
        data = json.loads(text, parse_constant=_refuse_constant, **numbers)
    except _NonStandardConstant as exc:
        line, column = _where(text, exc.name)
        at = f" at line {line}, column {column}" if line is not None else ""
        message = (
            f"is not valid JSON: {exc.name}{at} (JSON has no NaN or Infinity: write a number, "
            "null or a string there)"
        )
        return Loaded(path, True, error=message, line=line, column=column, bom=bom)
    except json.JSONDecodeError as exc:
        hint = _syntax_hint(text, exc.msg, exc.pos)
        message = f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        if hint:
            message += f" (probably {hint})"
        return Loaded(path, True, error=message, line=exc.lineno, column=exc.colno, bom=bom)
    if not isinstance(data, dict):
        return Loaded(path, exists=True, error="is JSON but not an object ({...})", bom=bom)
    servers = data.get("mcpServers")
    if servers is not None and not isinstance(servers, dict):
        return Loaded(path, True, error='has "mcpServers" that is not an object', bom=bom)
    return Loaded(path, exists=True, data=data, bom=bom)
