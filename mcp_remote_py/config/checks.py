"""What the doctor says about each ``mcpServers`` entry, and the entry to use instead.

Entries Claude Desktop cannot start (no ``command``, a command not on PATH or not executable,
``"type": "sse"`` / bare ``url`` entries), ``npx mcp-remote …`` entries (with their
mcp-remote-py translation), and mcp-remote-py entries whose args do not parse, use a ``${VAR}``
the entry does not set, or hold a literal secret.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .entry import (
    SECRET_ADVICE,
    VARIABLE_REFERENCE,
    InstallCommand,
    build_entry,
    command_for_this_install,
    literal_secrets,
    relay_parser,
)
from .mcp_remote import translate_mcp_remote

_MACOS_GUI_PATH = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")


@dataclass
class EntryFinding:
    """What the doctor says about one ``mcpServers`` entry."""

    name: str
    status: str  # pass, warn, fail
    summary: str
    details: list[str] = field(default_factory=list)
    fix: str = ""
    suggestion: dict[str, Any] | None = None


def _basename(command: str) -> str:
    name = re.split(r"[\\/]", command)[-1].lower()
    for suffix in (".cmd", ".exe", ".bat", ".ps1"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _mcp_remote_args(command: str, args: list[str]) -> list[str] | None:
    """The arguments after ``mcp-remote`` when this entry runs the Node mcp-remote, else None."""
    words = [command, *args]
    # cmd /c npx ... (Windows)
    if _basename(words[0]) == "cmd" and len(words) > 2 and words[1].lower() in ("/c", "/k"):
        words = words[2:]
    if _basename(words[0]) not in ("npx", "pnpx", "bunx", "pnpm", "yarn"):
        return None
    for index, word in enumerate(words[1:], start=1):
        if word.startswith("-"):
            continue  # npx's own flags (-y, --yes, --package=...)
        if word in ("dlx", "exec"):
            continue
        bare = word.split("@", 2)
        package = "@".join(bare[:2]) if word.startswith("@") else bare[0]
        if package == "mcp-remote":
            return words[index + 1 :]
        return None
    return None


def _entry_url(entry: Mapping[str, Any]) -> str | None:
    for key in ("url", "serverUrl", "server_url", "endpoint"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _url_entry_suggestion(
    name: str, entry: Mapping[str, Any], url: str, install: InstallCommand
) -> tuple[dict[str, Any], list[str]]:
    args = [url]
    notes: list[str] = []
    kind = str(entry.get("type", "")).lower()
    if kind == "sse" or url.rstrip("/").endswith("/sse"):
        args += ["--transport", "sse-first"]
    headers = entry.get("headers")
    if isinstance(headers, dict):
        for header_name, value in headers.items():
            text = f"{header_name}: {value}"
            translated, header_notes = translate_mcp_remote(["x", "--header", text], name)
            args += translated[1:]
            notes += header_notes
    return build_entry(args, install), notes


def _relay_entry_problems(
    args: list[str], env: Mapping[str, Any]
) -> tuple[str, list[str], list[str]]:
    """For an entry that runs mcp-remote-py: a usage error ('' if none), variables it uses but
    does not set, and literal secrets in it."""
    from ..core.headers import join_split_header_args

    missing: list[str] = []
    parser = relay_parser()
    try:
        namespace = _parse_quietly(parser, join_split_header_args(list(args)))
    except _ParseFailure as exc:
        return str(exc), [], []
    url = namespace.url or str(env.get("MCP_HTTP_URL", ""))
    if not url:
        return "no server URL in args (nor MCP_HTTP_URL in env)", [], []
    for variable in sorted(set(VARIABLE_REFERENCE.findall(" ".join(namespace.header)))):
        bare = variable[2:-1]
        if bare not in env:
            missing.append(
                f"{variable} is used but not set in the entry's env block (unless Claude Desktop's "
                "own environment has it, the relay will refuse to start)"
            )
    secrets = [
        f"{problem}: it shows in process lists and in the file"
        for problem in literal_secrets(url, namespace.header)
    ]
    return "", missing, secrets


class _ParseFailure(Exception):
    pass


def _parse_quietly(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parse_args`` that raises instead of printing and exiting."""

    def fail(message: str) -> Any:
        raise _ParseFailure(message)

    parser.error = fail  # type: ignore[method-assign]
    parser.exit = lambda status=0, message=None: fail(message or "exit")  # type: ignore[method-assign]
    return parser.parse_args(argv)


def _command_finding(
    name: str, command: str, env: Mapping[str, Any], which: Any, platform: str
) -> tuple[str, str, list[str], str]:
    """status, summary, details, fix for whether Claude Desktop can start ``command``."""
    details: list[str] = []
    if re.search(r"[\\/]", command):
        path = Path(os.path.expanduser(command))
        if not path.is_file():
            return (
                "fail",
                f"{name}: the command {command} does not exist",
                details,
                "Correct the path (`which mcp-remote-py`, or `where mcp-remote-py` on Windows)",
            )
        if os.name != "nt" and not os.access(path, os.X_OK):
            return "fail", f"{name}: {command} is not executable", details, f"chmod +x {command}"
        return "pass", f"{name}: runs {command}", details, ""
    env_path = env.get("PATH") if isinstance(env.get("PATH"), str) else None
    found = which(command, path=env_path) if env_path else which(command)
    if not found:
        return (
            "fail",
            f"{name}: the command {command!r} is not found on PATH",
            details,
            f'Claude Desktop cannot start it. Give its absolute path in "command" (find it with '
            f"`which {command}`, or `where {command}` on Windows), or install it",
        )
    if platform == "darwin" and str(Path(found).parent) not in _MACOS_GUI_PATH and not env_path:
        return (
            "warn",
            f"{name}: {command} is found here at {found}, but maybe not by Claude Desktop",
            details,
            f'Apps started from the Dock get a minimal PATH: put "command": "{found}"',
        )
    return "pass", f"{name}: runs {command} ({found})", details, ""


def check_entries(
    data: Mapping[str, Any],
    *,
    which: Any = shutil.which,
    platform: str | None = None,
    install: InstallCommand | None = None,
) -> list[EntryFinding]:
    """One finding per ``mcpServers`` entry."""
    platform = platform or sys.platform
    servers = data.get("mcpServers") or {}
    findings: list[EntryFinding] = []
    for name, entry in servers.items():
        if not isinstance(entry, dict):
            findings.append(EntryFinding(name, "fail", f"{name}: the entry is not an object"))
            continue
        raw_env = entry.get("env")
        env: dict[str, Any] = raw_env if isinstance(raw_env, dict) else {}
        command = entry.get("command")
        url = _entry_url(entry)
        if not isinstance(command, str) or not command.strip():
            if url is not None:
                install = install or command_for_this_install(which)
                suggestion, notes = _url_entry_suggestion(name, entry, url, install)
                kind = entry.get("type")
                what = f'"type": "{kind}"' if kind else 'a "url"'
                findings.append(
                    EntryFinding(
                        name,
                        "fail",
                        f'{name}: {what} entry without "command": Claude Desktop cannot use it '
                        '(it reports "Required")',
                        notes,
                        "Claude Desktop starts local commands only; let mcp-remote-py connect "
                        "to the URL. Use this entry instead:",
                        suggestion,
                    )
                )
            else:
                findings.append(
                    EntryFinding(
                        name,
                        "fail",
                        f'{name}: no "command" (Claude Desktop reports "Required")',
                        fix='Every entry needs "command" (and usually "args")',
                    )
                )
            continue
        raw_args = entry.get("args", [])
        if not isinstance(raw_args, list) or not all(isinstance(a, str) for a in raw_args):
            findings.append(EntryFinding(name, "fail", f'{name}: "args" must be a list of strings'))
            continue
        args: list[str] = raw_args
        status, summary, details, fix = _command_finding(name, command, env, which, platform)
        remote_args = _mcp_remote_args(command, args)
        if remote_args is not None:
            install = install or command_for_this_install(which)
            translated, notes = translate_mcp_remote(remote_args, name)
            suggestion = build_entry(translated, install)
            if env:
                suggestion["env"] = dict.fromkeys(env, "(keep your value)")
            findings.append(
                EntryFinding(
                    name,
                    "fail" if status == "fail" else "warn",
                    f"{name}: runs the Node mcp-remote through {command}"
                    + (" (which is not found)" if status == "fail" else ""),
                    notes,
                    "mcp-remote-py needs neither Node nor npx. Use this entry instead:",
                    suggestion,
                )
            )
            continue
        words = [_basename(command), *args[:2]]
        runs_us = (
            words[0] == "mcp-remote-py"
            or (words[0] == "uvx" and args[:1] == ["mcp-remote-py"])
            or (words[0] == "pipx" and args[:2] == ["run", "mcp-remote-py"])
        )
        if runs_us and status != "fail":
            relay_args = args
            if words[0] == "uvx":
                relay_args = args[1:]
            elif words[0] == "pipx":
                relay_args = args[2:]
            error, missing, secrets = _relay_entry_problems(relay_args, env)
            if error:
                status, fix = "fail", "Correct the entry's args (see `mcp-remote-py --help`)"
                details = [*details, f"the args are not valid: {error}"]
            elif missing or secrets:
                status = "warn" if status == "pass" else status
                details = [*details, *missing, *secrets]
                if secrets:
                    fix = fix or SECRET_ADVICE.format(url="URL")
                else:
                    fix = fix or (
                        'Add the variable to the entry\'s "env" block, or store the token once '
                        "with `mcp-remote-py auth set URL` and drop the header"
                    )
        elif any(a.endswith("http-streaming-client.js") for a in args) and "MCP_HTTP_URL" in env:
            status = "warn" if status == "pass" else status
            details = [*details, "this bare streaming client neither sends nor resumes anything"]
            fix = fix or (
                'Use "command": "mcp-remote-py" with no args; it reads MCP_HTTP_URL from env'
            )
        findings.append(EntryFinding(name, status, summary, details, fix))
    return findings
