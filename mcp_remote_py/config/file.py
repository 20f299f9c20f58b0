"""Finding and reading Claude Desktop's ``claude_desktop_config.json``.

``default_config_path`` is where this OS keeps it. ``load_config`` never raises: a missing,
unreadable or broken file comes back as a ``Loaded`` with the error, and a JSON syntax error
carries its line, column and likely cause (a trailing comma, a comment, single quotes, a lone
backslash in a Windows path).
"""

from __future__ import annotations

import json
import os
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


def load_config(path: Path) -> Loaded:
    """Read and parse ``path``; never raises for a missing or broken file."""
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
    try:
        data = json.loads(text)
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
