"""Claude Desktop's ``claude_desktop_config.json``: where it is, what is wrong with it, and the
entry that runs mcp-remote-py.

``mcp-remote-py config show URL --name NAME [relay options]`` prints the entry;
``mcp-remote-py config install URL --name NAME [--force] [relay options]`` writes it into this
OS's config file: created when missing, the rest of the file kept, the old file kept as a
timestamped ``.bak``, replaced atomically, an existing entry replaced only with ``--force``.
Neither ever writes a secret: a literal token in a header or the URL is refused, with the two
ways that keep it out of the file (``${VAR}`` plus the entry's ``env`` block, or
``mcp-remote-py auth set URL``).

The doctor uses ``load_config`` and ``check_entries`` to report on an existing file: JSON syntax
errors with line and column, entries Claude Desktop cannot start (no ``command``, a command not
on PATH, ``"type": "sse"`` / bare ``url`` entries), and ``npx mcp-remote …`` entries with the
mcp-remote-py entry to use instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "EntryFinding",
    "Loaded",
    "build_entry",
    "check_entries",
    "command_for_this_install",
    "default_config_path",
    "install_entry",
    "literal_secrets",
    "load_config",
    "main",
    "relay_args_from_namespace",
    "translate_mcp_remote",
]

PROG = "mcp-remote-py config"
CONFIG_NAME = "claude_desktop_config.json"
# Header names whose values are credentials.
_SECRET_HEADER = re.compile(
    r"(?i)^(authorization|proxy-authorization|cookie|x-api-key|api-key|apikey"
    r"|.*token.*|.*secret.*|.*password.*|.*-key)$"
)
_AUTH_SCHEME = re.compile(r"(?i)^(bearer|basic|token|digest|apikey)\s+")
_VARIABLE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_SECRET_QUERY = re.compile(
    r"(?i)(^|&)(access_token|token|api[_-]?key|key|secret|password|client_secret|auth)="
)
_MACOS_GUI_PATH = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")

# mcp-remote's flags: the same meaning here, a translation, or nothing we support.
_MR_SAME_WITH_VALUE = {"--header", "--transport", "--header-file", "--ignore-tool"}
_MR_SAME_FLAG = {"--allow-http", "--debug", "--ipv4"}
_MR_UNSUPPORTED_WITH_VALUE = {
    "--host": "OAuth callback host",
    "--callback-path": "OAuth callback path",
    "--auth-timeout": "OAuth",
    "--static-oauth-client-metadata": "OAuth client metadata",
    "--static-oauth-client-info": "OAuth client registration",
    "--client-metadata-url": "OAuth client metadata document",
    "--resource": "OAuth resource parameter",
    "--authorize-param": "OAuth authorize parameters",
    "--token-endpoint": "OAuth token endpoint",
    "--protocol": "the 2026-07-28 protocol bridge",
    "--headers-timeout": "undici timeouts (mcp-remote-py has none to set: streams are unbounded)",
    "--body-timeout": "undici timeouts (mcp-remote-py has none to set: streams are unbounded)",
}
_MR_UNSUPPORTED_FLAG = {
    "--disable-resource-parameter": "OAuth resource parameter",
    "--device-code": "OAuth device code grant",
    "--client-credentials": "OAuth client credentials grant",
    "--use-id-token": "OAuth id token",
    "--disable-cookies": "cookies",
}


class ConfigError(Exception):
    """The config file cannot be used or changed; the message says why and what to do."""


# --------------------------------------------------------------------------- where


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


# --------------------------------------------------------------------------- reading


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


# --------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class InstallCommand:
    """How a desktop client starts this install: ``command`` then ``prefix`` then our args."""

    command: str
    prefix: tuple[str, ...] = ()
    note: str = ""


def _script_beside_interpreter() -> Path | None:
    import sysconfig

    names = ["mcp-remote-py.exe", "mcp-remote-py"] if os.name == "nt" else ["mcp-remote-py"]
    folders = [Path(sys.executable).parent]
    with contextlib.suppress(KeyError):  # an unusual install scheme has no "scripts"
        folders.append(Path(sysconfig.get_path("scripts")))
    for folder in folders:
        for name in names:
            candidate = folder / name
            if candidate.is_file():
                return candidate.resolve()
    return None


def command_for_this_install(which: Any = shutil.which) -> InstallCommand:
    """The command that starts this very install: the frozen executable's path; else the
    ``mcp-remote-py`` script of this environment or the one on PATH (absolute: Claude Desktop
    does not start programs with your shell's PATH); else ``uvx`` or ``pipx run``."""
    if getattr(sys, "frozen", False):
        return InstallCommand(str(Path(sys.executable).resolve()))
    own = _script_beside_interpreter()
    if own is not None:
        return InstallCommand(str(own))
    on_path = which("mcp-remote-py")
    if on_path:
        return InstallCommand(str(Path(on_path).resolve()))
    uvx = which("uvx")
    if uvx:
        return InstallCommand(
            str(Path(uvx).resolve()), ("mcp-remote-py",), "runs the latest mcp-remote-py with uv"
        )
    pipx = which("pipx")
    if pipx:
        return InstallCommand(str(Path(pipx).resolve()), ("run", "mcp-remote-py"), "via pipx")
    return InstallCommand(
        "uvx",
        ("mcp-remote-py",),
        "mcp-remote-py was not found as a command here; this entry needs uv "
        "(https://docs.astral.sh/uv/) or `pipx install mcp-remote-py` (then use its path)",
    )


def build_entry(relay_args: Sequence[str], install: InstallCommand) -> dict[str, Any]:
    return {"command": install.command, "args": [*install.prefix, *relay_args]}


def _relay_parser() -> argparse.ArgumentParser:
    from ..options import build_parser

    return build_parser()


def relay_args_from_namespace(
    args: argparse.Namespace, parser: argparse.ArgumentParser | None = None
) -> list[str]:
    """The relay's command line for ``args``: the URL, then each option that differs from its
    default, in the parser's order (so the entry is canonical, whatever form was typed)."""
    parser = parser or _relay_parser()
    out: list[str] = [args.url] if args.url else []
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        if not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        if value == action.default or value is None:
            continue
        flag = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            out.append(flag)
        elif isinstance(value, list):
            for item in value:
                out += [flag, str(item)]
        elif isinstance(value, float):
            out += [flag, f"{value:g}"]
        else:
            out += [flag, str(value)]
    return out


def literal_secrets(url: str, headers: Sequence[str]) -> list[str]:
    """Why writing this URL and these ``--header`` values would put a secret in the file."""
    from urllib.parse import urlsplit

    problems: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            problems.append("the URL carries a password (user:password@)")
        if parts.query and _SECRET_QUERY.search(parts.query):
            problems.append("the URL's query carries a token-like parameter")
    except ValueError:
        pass
    for header in headers:
        name, _, value = header.partition(":")
        name, value = name.strip(), value.strip()
        if not _SECRET_HEADER.match(name):
            continue
        rest = _AUTH_SCHEME.sub("", value)
        if rest and _VARIABLE.sub("", rest).strip():
            problems.append(f"the {name} header holds a literal value")
    return problems


SECRET_ADVICE = (
    "A token written into claude_desktop_config.json is readable by anything that reads the file "
    "and shows in process lists. Keep it out:\n"
    "  - store it in your OS keyring once: mcp-remote-py auth set {url}\n"
    "    (then no --header is needed; the relay sends it to this server only), or\n"
    "  - write --header 'Authorization: Bearer ${{API_TOKEN}}' and put API_TOKEN in the entry's "
    '"env" block yourself'
)


# --------------------------------------------------------------------------- checking entries


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


def translate_mcp_remote(args: Sequence[str], name: str = "") -> tuple[list[str], list[str]]:
    """mcp-remote's arguments as mcp-remote-py's, and notes on what could not be carried over.

    A literal credential in a header is replaced by a ``${VAR}`` reference (the translation is
    printed, and must not repeat the secret).
    """
    out: list[str] = []
    notes: list[str] = []
    url: str | None = None
    variable = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "MCP"
    items = list(args)
    index = 0
    while index < len(items):
        word = items[index]
        flag, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        value: str | None = inline if eq else None

        def take_value(inline_value: str | None = value) -> str | None:
            nonlocal index
            if inline_value is not None:
                return inline_value
            if index + 1 < len(items):
                index += 1
                return items[index]
            return None

        if not word.startswith("-"):
            if url is None:
                url = word
            elif word.isdigit():
                notes.append(f"the OAuth callback port {word} is not needed (no OAuth flow here)")
            else:
                notes.append(f"ignored the extra argument {word!r}")
        elif flag in _MR_SAME_WITH_VALUE:
            given = take_value()
            if given is None:
                notes.append(f"{flag} had no value; dropped")
            else:
                if flag == "--header" and literal_secrets("", [given]):
                    header_name = given.partition(":")[0].strip()
                    scheme = _AUTH_SCHEME.match(given.partition(":")[2].strip())
                    prefix = scheme.group(0) if scheme else ""
                    given = f"{header_name}: {prefix}${{{variable}_TOKEN}}"
                    notes.append(
                        f"the {header_name} header held a literal token: it now reads "
                        f"${{{variable}_TOKEN}}; put the token in the entry's env block as "
                        f"{variable}_TOKEN, or better store it with `mcp-remote-py auth set URL` "
                        "and drop the header"
                    )
                out += [flag, given]
        elif flag in _MR_SAME_FLAG:
            out.append(flag)
        elif flag == "--silent":
            out += ["--log-level", "error"]
        elif flag == "--enable-proxy":
            notes.append("--enable-proxy is not needed: mcp-remote-py always honours HTTPS_PROXY")
        elif flag in ("--keep-alive",):
            notes.append("--keep-alive is not needed: mcp-remote-py pings an idle session (30 s)")
        elif flag == "--ping-interval":
            given = take_value()
            if given is not None:
                out += ["--keepalive", given]
        elif flag == "--connect-timeout":
            given = take_value()
            if given is not None:
                out += ["--connect-timeout", given]
        elif flag in _MR_UNSUPPORTED_WITH_VALUE:
            take_value()
            notes.append(f"{flag} ({_MR_UNSUPPORTED_WITH_VALUE[flag]}) is not supported; dropped")
        elif flag in _MR_UNSUPPORTED_FLAG:
            notes.append(f"{flag} ({_MR_UNSUPPORTED_FLAG[flag]}) is not supported; dropped")
        else:
            notes.append(f"unknown mcp-remote option {flag}; dropped")
        index += 1
    if url is None:
        notes.append("no server URL found in the mcp-remote arguments")
        return out, notes
    if literal_secrets(url, []):
        notes.append(
            "the URL carries a credential (shown masked here): it shows in process lists; store "
            "the token with `mcp-remote-py auth set URL` if the server accepts it as a bearer token"
        )
    return [url, *out], notes


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
    parser = _relay_parser()
    try:
        namespace = _parse_quietly(parser, join_split_header_args(list(args)))
    except _ParseFailure as exc:
        return str(exc), [], []
    url = namespace.url or str(env.get("MCP_HTTP_URL", ""))
    if not url:
        return "no server URL in args (nor MCP_HTTP_URL in env)", [], []
    for variable in sorted(set(_VARIABLE.findall(" ".join(namespace.header)))):
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


# --------------------------------------------------------------------------- writing


def _backup_name(path: Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    candidate = path.with_name(f"{path.name}.{stamp}.bak")
    counter = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{stamp}-{counter}.bak")
        counter += 1
    return candidate


def _write_atomic(path: Path, text: str, mode: int | None) -> None:
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@dataclass
class Installed:
    path: Path
    created: bool
    replaced: bool
    backup: Path | None


def install_entry(
    path: Path, name: str, entry: dict[str, Any], *, force: bool = False, now: float | None = None
) -> Installed:
    """Put ``entry`` under ``mcpServers[name]`` in ``path``, keeping everything else."""
    loaded = load_config(path)
    if loaded.error is not None:
        raise ConfigError(
            f"{path} {loaded.error}. Fix it first (nothing was changed): "
            "`mcp-remote-py doctor` checks it"
        )
    data: dict[str, Any] = loaded.data if loaded.data is not None else {}
    servers = data.setdefault("mcpServers", {})
    replaced = name in servers
    if replaced and not force:
        raise ConfigError(
            f'{path} already has an entry "{name}"; nothing was changed. Choose another --name, '
            "or pass --force to replace it (the old file is kept as a .bak)"
        )
    servers[name] = entry
    backup: Path | None = None
    mode: int | None = None
    if loaded.exists:
        backup = _backup_name(path, time.time() if now is None else now)
        shutil.copy2(path, backup)
        mode = path.stat().st_mode & 0o777
    _write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", mode)
    return Installed(path, created=not loaded.exists, replaced=replaced, backup=backup)


# --------------------------------------------------------------------------- the command line


_EPILOG = """\
examples:
  mcp-remote-py config show https://mcp.example.com/mcp --name example
  mcp-remote-py config install https://mcp.example.com/mcp --name example
  mcp-remote-py config install https://mcp.example.com/sse --name old --transport sse-only --force
  mcp-remote-py config install https://mcp.example.com/mcp --name ex \\
      --header 'Authorization: Bearer ${API_TOKEN}'     # then add API_TOKEN to the entry's env

Every relay option (see `mcp-remote-py --help`) may follow and goes into the entry's args.
A literal token is refused: store it with `mcp-remote-py auth set URL` instead."""


def build_parser(command: str) -> argparse.ArgumentParser:
    relay = _relay_parser()
    parser = argparse.ArgumentParser(
        prog=f"{PROG} {command}",
        description=(
            "Print the claude_desktop_config.json entry that runs mcp-remote-py for URL."
            if command == "show"
            else "Add the entry that runs mcp-remote-py for URL to Claude Desktop's config file."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[relay],
        add_help=False,
        conflict_handler="resolve",
    )
    parser.add_argument("-h", "--help", action="help", help="show this help and exit")
    parser.add_argument("--name", required=True, help="the entry's name under mcpServers")
    parser.add_argument(
        "--claude-config",
        metavar="PATH",
        help=f"the config file (default for this OS: {default_config_path()})",
    )
    if command == "install":
        parser.add_argument(
            "--force", action="store_true", help="replace an entry of the same name"
        )
    return parser


def _usage(command: str) -> str:
    return (
        f"usage: {PROG} show URL --name NAME [relay options]\n"
        f"       {PROG} install URL --name NAME [--force] [--claude-config PATH] "
        "[relay options]\n" + ("" if command else "\n" + _EPILOG + "\n")
    )


def main(argv: list[str]) -> int:
    """``mcp-remote-py config ...``: 0 done, 1 refused (secret, existing entry, broken file),
    2 usage error."""
    from ..core.headers import join_split_header_args

    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage(""))
        return 0 if argv else 2
    command, rest = argv[0], join_split_header_args(argv[1:])
    if command not in ("show", "install"):
        sys.stderr.write(f"{PROG}: unknown command {command!r}\n" + _usage(command))
        return 2
    parser = build_parser(command)
    try:
        args = parser.parse_args(rest)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not args.url:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{PROG} {command}: error: the server URL is required\n")
        return 2
    from ..core.errors import UsageError

    problem = _check_url(args.url, args.allow_http)
    if problem:
        sys.stderr.write(f"{PROG} {command}: error: {problem}\n")
        return 2
    secrets = literal_secrets(args.url, args.header)
    if secrets:
        from ..shell.net import display_url

        try:
            import httpx

            shown = display_url(httpx.URL(args.url))
        except (UsageError, ValueError, Exception):
            shown = "URL"
        sys.stderr.write(
            f"{PROG} {command}: refusing to write a secret into the config file: "
            + "; ".join(secrets)
            + ".\n"
            + SECRET_ADVICE.format(url=shown)
            + "\n"
        )
        return 1
    relay_args = relay_args_from_namespace(args, _relay_parser())
    install = command_for_this_install()
    entry = build_entry(relay_args, install)
    path = Path(args.claude_config) if args.claude_config else default_config_path()
    notes = []
    if install.note:
        notes.append(install.note)
    variables = sorted({v[2:-1] for v in _VARIABLE.findall(" ".join(args.header))})
    if variables:
        notes.append(
            "add "
            + ", ".join(variables)
            + ' to the entry\'s "env" block (e.g. "env": {"'
            + variables[0]
            + '": "..."}), or store the token with `mcp-remote-py auth set URL` instead'
        )
    if command == "show":
        sys.stdout.write(
            json.dumps({"mcpServers": {args.name: entry}}, indent=2, ensure_ascii=False) + "\n"
        )
        sys.stderr.write(f'Put this entry under "mcpServers" in {path}\n')
        sys.stderr.write(
            f"(or run `mcp-remote-py config install {' '.join(_quote(a) for a in rest)}`), "
            "then restart Claude Desktop.\n"
        )
        for note in notes:
            sys.stderr.write(f"note: {note}\n")
        return 0
    try:
        done = install_entry(path, args.name, entry, force=args.force)
    except ConfigError as exc:
        sys.stderr.write(f"{PROG} install: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"{PROG} install: cannot write {path}: {exc.strerror or exc}\n")
        return 1
    verb = "replaced" if done.replaced else "added"
    sys.stdout.write(
        f'{verb} "{args.name}" in {done.path}' + (" (new file)" if done.created else "")
    )
    sys.stdout.write(f"; the previous file is kept as {done.backup}\n" if done.backup else "\n")
    sys.stdout.write(json.dumps({args.name: entry}, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.write("Restart Claude Desktop (quit it fully) to use it.\n")
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    return 0


def _check_url(url: str, allow_http: bool) -> str:
    from urllib.parse import urlsplit

    from ..shell.net import is_loopback_host

    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return "the server URL is not valid, e.g. https://mcp.example.com/mcp"
    if parts.scheme not in ("http", "https") or not host:
        return "the server URL must be http:// or https:// with a host, e.g. https://mcp.example.com/mcp"
    if parts.scheme == "http" and not allow_http and not is_loopback_host(host):
        return (
            f"plain http:// to {host} would send headers unencrypted; use https://, or pass "
            "--allow-http (it goes into the entry too)"
        )
    return ""


def _quote(word: str) -> str:
    import shlex

    return shlex.quote(word)
