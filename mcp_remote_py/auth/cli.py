"""``mcp-remote-py auth set|show|list|delete``: a server's bearer token in the credential store.

``main(argv)`` takes the arguments after ``auth`` and returns the exit status: 0 done, 1 nothing
stored (``show``, ``delete``) or the store cannot be used, 2 a usage error, 130 interrupted.

A token is read from a no-echo prompt on a terminal, or as one line from stdin; never from the
command line (process lists and shell history would show it). No output or error ever shows a
secret in full: tokens are masked (``abcd…wxyz``), and an argument that might be a token is
masked when an error has to mention it.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from .store import (
    STORE_KIND_ENV,
    Credential,
    CredentialStore,
    CredentialStoreError,
    canonical_server_key,
    mask_secret,
)

__all__ = ["PROG", "build_parser", "main"]

PROG = "mcp-remote-py auth"
_STORE_CHOICES = ("keyring", "file")
# Words of this command line that are never secrets; any other argument of 8 or more characters
# is masked when an error message repeats it.
_SAFE_WORDS = frozenset({"set", "show", "list", "delete", "--credential-store", "--help", "-h"})
_MIN_MASKED = 8
_BEARER_PREFIX = re.compile(r"^bearer(?:\s+|$)", re.IGNORECASE)

_DESCRIPTION = """\
Store a server's bearer token once, and mcp-remote-py sends it as 'Authorization: Bearer ...' to
that server (and only to it: same scheme, host, port and path) when no --header Authorization is
given. Tokens live in the OS keyring (macOS Keychain, Windows Credential Manager, Secret Service
on Linux); where there is none, in a file readable only by you, with a warning."""

_EPILOG = f"""\
examples:
  mcp-remote-py auth set https://mcp.example.com/mcp          # then type the token (not shown)
  printenv API_TOKEN | mcp-remote-py auth set https://mcp.example.com/mcp
  mcp-remote-py auth show https://mcp.example.com/mcp
  mcp-remote-py auth list
  mcp-remote-py auth delete https://mcp.example.com/mcp

--credential-store keyring|file (or {STORE_KIND_ENV}) chooses where tokens live; the
default uses the OS keyring when there is one and the file otherwise. MCP_REMOTE_PY_CONFIG_DIR
moves the file and the keyring's list of servers (default: the user config directory)."""

_SET_EPILOG = """\
The token is read from a hidden prompt on a terminal, or as one line from standard input; it is
never taken from the command line, where process lists and shell history would keep it.

examples:
  mcp-remote-py auth set https://mcp.example.com/mcp
  printenv API_TOKEN | mcp-remote-py auth set https://mcp.example.com/mcp
  mcp-remote-py auth set https://mcp.example.com/mcp < token.txt
  mcp-remote-py auth set https://mcp.example.com/mcp --credential-store file"""


class _UsageFailure(Exception):
    def __init__(self, message: str, parser: argparse.ArgumentParser | None = None) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors come back to ``main`` (to be masked) instead of exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        raise _UsageFailure(message, self)


def build_parser() -> _Parser:
    store_help = (
        "where the tokens live: keyring (the OS keyring; an error if there is none) or file "
        "(a JSON file readable only by you). Default: the keyring if the OS has one, else the "
        f"file; or ${STORE_KIND_ENV}. e.g. --credential-store file"
    )
    # Accepted before and after the command; the command's own default must not overwrite a
    # value given before it, hence SUPPRESS there.
    common = _Parser(add_help=False, allow_abbrev=False)
    common.add_argument(
        "--credential-store", choices=_STORE_CHOICES, default=argparse.SUPPRESS, help=store_help
    )
    parser = _Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--credential-store", choices=_STORE_CHOICES, default=None, help=store_help)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, epilog: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=epilog,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        parser.commands[name] = sub
        return sub

    url_help = "the server's MCP endpoint, as you give it to mcp-remote-py"
    cmd = command(
        "set",
        "store a bearer token for a server (read from a hidden prompt or stdin)",
        _SET_EPILOG,
    )
    cmd.add_argument("url", metavar="URL", help=f"{url_help}, e.g. https://mcp.example.com/mcp")
    cmd = command(
        "show",
        "show a server's stored credential, masked (exit status 1 if there is none)",
        "example:\n  mcp-remote-py auth show https://mcp.example.com/mcp",
    )
    cmd.add_argument("url", metavar="URL", help=f"{url_help}, e.g. https://mcp.example.com/mcp")
    command(
        "list",
        "list the servers that have a stored credential, one a line (no secrets)",
        "example:\n  mcp-remote-py auth list",
    )
    cmd = command(
        "delete",
        "delete a server's stored credential (exit status 1 if there was none)",
        "example:\n  mcp-remote-py auth delete https://mcp.example.com/mcp",
    )
    cmd.add_argument("url", metavar="URL", help=f"{url_help}, e.g. https://mcp.example.com/mcp")
    return parser


def _open_store(store_kind: str | None) -> CredentialStore:
    """The store the commands use (tests replace this to inject a keyring backend)."""
    return CredentialStore(store_kind)


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)


def _key(url: str) -> str:
    try:
        return canonical_server_key(url)
    except ValueError as exc:
        raise _UsageFailure(str(exc)) from None


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def _read_token(key: str, stdin: TextIO | None) -> str:
    if stdin is None or stdin.closed:
        raise _UsageFailure(
            "no token: standard input is closed; pipe the token in, e.g. "
            f"printenv API_TOKEN | {PROG} set URL"
        )
    if stdin.isatty():
        line = getpass.getpass(f"Bearer token for {key} (input is hidden): ")
    else:
        line = stdin.readline()
    # A pasted "Bearer abc" (or a bare "Bearer") is the header value, not the token.
    token = _BEARER_PREFIX.sub("", line.strip(), count=1)
    if not token:
        raise _UsageFailure(
            "empty token: nothing was stored. Type the token at the prompt, or give it as one "
            f"line on standard input, e.g. printenv API_TOKEN | {PROG} set URL"
        )
    if any(c.isspace() or not c.isprintable() for c in token):
        raise _UsageFailure(
            "the token contains spaces or control characters, which a bearer token never has: "
            "nothing was stored. Give only the token itself, on one line"
        )
    return token


def _cmd_set(args: argparse.Namespace, store: CredentialStore) -> int:
    key = _key(args.url)
    where = store.describe()  # fail on an unusable store before asking for a token
    try:
        token = _read_token(key, sys.stdin)
    except EOFError:
        raise _UsageFailure("no token given: nothing was stored") from None
    store.put(args.url, Credential(kind="bearer", access_token=token))
    _out(f"stored a bearer token for {key}")
    _out(f"  store: {where}")
    _out(f"  token: {mask_secret(token)}")
    return 0


def _cmd_show(args: argparse.Namespace, store: CredentialStore) -> int:
    key = _key(args.url)
    found = store.lookup(args.url)
    if found is None:
        _err(
            f"no credential stored for {key} (store: {store.describe()}). Store one with: "
            f"{PROG} set {key}"
        )
        return 1
    credential, where = found
    _out(key)
    _out(f"  kind: {credential.kind}")
    _out(f"  token: {mask_secret(credential.access_token)}")
    if credential.refresh_token:
        _out(f"  refresh token: {mask_secret(credential.refresh_token)}")
    if credential.expires_at is not None:
        state = "expired" if credential.expired() else "valid"
        _out(f"  expires: {_when(credential.expires_at)} ({state})")
    if credential.saved_at:
        _out(f"  saved: {_when(credential.saved_at)}")
    _out(f"  store: {where}")
    return 0


def _cmd_list(args: argparse.Namespace, store: CredentialStore) -> int:
    keys = store.list()
    for key in keys:
        _out(key)
    if not keys:
        _err(f"no credentials stored (store: {store.describe()})")
    return 0


def _cmd_delete(args: argparse.Namespace, store: CredentialStore) -> int:
    key = _key(args.url)
    if store.delete(args.url):
        _out(f"deleted the credential for {key} (store: {store.describe()})")
        return 0
    _err(f"nothing was stored for {key} (store: {store.describe()}); nothing deleted")
    return 1


_COMMANDS: dict[str, Callable[[argparse.Namespace, CredentialStore], int]] = {
    "set": _cmd_set,
    "show": _cmd_show,
    "list": _cmd_list,
    "delete": _cmd_delete,
}


def _mask_arguments(message: str, argv: Sequence[str]) -> str:
    """Mask in ``message`` every argument that could be a secret (an error may repeat one)."""
    candidates: set[str] = set()
    for arg in argv:
        if arg in _SAFE_WORDS or arg in _STORE_CHOICES:
            continue
        candidates.add(arg)
        name, sep, value = arg.partition("=")
        if sep and name.startswith("-"):
            candidates.add(value)
    for arg in sorted(candidates, key=len, reverse=True):
        if len(arg) >= _MIN_MASKED:
            message = message.replace(arg, mask_secret(arg))
    return message


def main(argv: list[str]) -> int:
    """Run ``mcp-remote-py auth`` with ``argv`` (the arguments after ``auth``)."""
    parser = build_parser()
    try:
        try:
            args, extras = parser.parse_known_args(argv)
        except SystemExit as exc:  # --help
            return exc.code if isinstance(exc.code, int) else 0
        if extras:
            if args.command == "set":
                raise _UsageFailure(
                    "refusing a token (or anything else) after the URL: on the command line it "
                    "would show in process lists and shell history. Type it at the prompt, or "
                    f"pipe it in: printenv API_TOKEN | {PROG} set URL",
                    parser.commands["set"],
                )
            raise _UsageFailure(
                f"unexpected argument{'s' if len(extras) > 1 else ''} for '{args.command}' (not "
                "repeated here, in case one is a secret)",
                parser.commands[args.command],
            )
        store = _open_store(args.credential_store)
        return _COMMANDS[args.command](args, store)
    except _UsageFailure as exc:
        if exc.parser is not None:
            exc.parser.print_usage(sys.stderr)
        _err(f"error: {_mask_arguments(str(exc), argv)}")
        return 2
    except CredentialStoreError as exc:
        _err(f"error: {_mask_arguments(str(exc), argv)}")
        return 1
    except KeyboardInterrupt:
        _err("interrupted: nothing was changed")
        return 130
