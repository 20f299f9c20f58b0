"""The entry that runs this mcp-remote-py, and writing it into the config file.

``command_for_this_install`` is how a desktop client starts this very install, and
``relay_args_from_namespace`` the relay's options as the entry's args. ``install_entry`` puts the
entry under ``mcpServers``: the rest of the file kept (its numbers as written), the old file kept
as a timestamped ``.bak``, replaced atomically, under a lock file so that two installs at once
both land; a config file that is a symbolic link (into a dotfiles repository, say) stays one,
and the file it leads to is replaced, keeping its mode. ``literal_secrets`` says why an entry
would put a credential into the file, which is refused wherever an entry is written or
suggested; ``SECRET_ADVICE`` gives the two ways to keep it out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..auth.errors import CredentialStoreError
from ..auth.store_files import locked
from .file import dump_config, load_config

AUTH_SCHEME = re.compile(r"(?i)^(bearer|basic|token|digest|apikey)\s+")
VARIABLE_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
# Names (of a header or a query parameter) that say their value is a credential, judged word by
# word: "X-Auth-Token", "x_api_key", "googleApiKey", "AUTH" are split at "-", "_", "." and case
# changes. A word that holds one of _SECRET_PARTS ("accesstoken", "clientsecret", "apikey"), or
# is one of _SECRET_WORDS, makes it a credential; a last word of _PLAIN_LAST does not
# ("X-Auth-Email", "token_type" name what the credential is, not it).
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SECRET_PARTS = re.compile(r"token|secret|passw|credential|apikey|cookie")
_SECRET_WORDS = frozenset(
    {"auth", "authorization", "key", "sig", "signature", "jwt", "pwd", "bearer", "accesskey"}
)
_PLAIN_LAST = frozenset({"email", "user", "username", "type", "scheme", "method", "mode", "id"})


class ConfigError(Exception):
    """The config file cannot be used or changed; the message says why and what to do."""


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


def relay_parser() -> argparse.ArgumentParser:
    """The relay's own parser, imported on use: ``options`` is not needed to read a config."""
    from ..options import build_parser

    return build_parser()


def relay_args_from_namespace(args: argparse.Namespace) -> list[str]:
    """The relay's command line for ``args``: the URL, then each option that differs from its
    default, in the parser's order (so the entry is canonical, whatever form was typed)."""
    parser = relay_parser()
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


def names_a_secret(name: str) -> bool:
    """Whether a header or query parameter of this name carries a credential: Authorization,
    Cookie, X-Auth, X-Auth-Token, X-API-Key, Api-Key, api_token, access_token, googleApiKey, sig
    (see _WORDS)."""
    words = [word.lower() for word in _WORDS.findall(name)]
    if not words or words[-1] in _PLAIN_LAST:
        return False
    return any(word in _SECRET_WORDS or _SECRET_PARTS.search(word) for word in words)


def literal_secrets(url: str, headers: Sequence[str]) -> list[str]:
    """Why writing this URL and these ``--header`` values would put a secret in the file."""
    from urllib.parse import parse_qsl, urlsplit

    problems: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            problems.append("the URL carries a password (user:password@)")
        query = parse_qsl(parts.query, keep_blank_values=True)
        if any(value and names_a_secret(name) for name, value in query):
            problems.append("the URL's query carries a token-like parameter")
    except ValueError:
        pass
    for header in headers:
        name, _, value = header.partition(":")
        name, value = name.strip(), value.strip()
        if not names_a_secret(name):
            continue
        rest = AUTH_SCHEME.sub("", value)
        if rest and VARIABLE_REFERENCE.sub("", rest).strip():
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
    # The file written, when ``path`` is a symbolic link to it.
    target: Path | None = None


def lock_file_for(path: Path) -> Path:
    """The lock file that ``install_entry`` holds while it changes ``path``."""
    return path.with_name(f".{path.name}.lock")


def _link_target(path: Path) -> Path:
    """The file to replace for ``path``: ``path`` itself, or the file a symbolic link leads to
    (replacing the link would turn it into a file of its own, cut off from where it pointed)."""
    if not path.is_symlink():
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:  # a dangling link: the file it names is created
        return Path(os.path.realpath(path))
    except OSError as exc:  # a loop
        raise ConfigError(
            f"{path} is a symbolic link that cannot be followed ({exc.strerror or exc}); "
            "nothing was changed"
        ) from None


def install_entry(
    path: Path, name: str, entry: dict[str, Any], *, force: bool = False, now: float | None = None
) -> Installed:
    """Put ``entry`` under ``mcpServers[name]`` in ``path``, keeping everything else.

    The read, the backup and the write happen under ``lock_file_for(path)`` (the credential
    store's ``locked``), so a second install waits for the first and keeps its entry.
    """
    if not path.is_symlink():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with locked(lock_file_for(path), what=f"the config file {path}"):
            return _install_locked(path, name, entry, force, time.time() if now is None else now)
    except CredentialStoreError as exc:  # only the lock's: could not open it, or timed out
        raise ConfigError(f"{exc}; nothing was changed") from None


def _install_locked(
    path: Path, name: str, entry: dict[str, Any], force: bool, now: float
) -> Installed:
    target = _link_target(path)
    loaded = load_config(target, exact_numbers=True)
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
        # Beside the name the client knows, not in the link's repository.
        backup = _backup_name(path, now)
        shutil.copy2(target, backup)
        mode = target.stat().st_mode & 0o777
    _write_atomic(target, dump_config(data) + "\n", mode)
    return Installed(
        path,
        created=not loaded.exists,
        replaced=replaced,
        backup=backup,
        target=target if target != path else None,
    )
