"""``mcp-remote-py config show|install``: print the entry that runs mcp-remote-py, or write it.

``mcp-remote-py config show URL --name NAME [relay options]`` prints the entry;
``mcp-remote-py config install URL --name NAME [--force] [relay options]`` writes it into this
OS's config file: created when missing, the rest of the file kept (numbers as written; ``NaN``
and ``Infinity``, which are not JSON, refused with their line), the old file kept as a
timestamped ``.bak``, replaced atomically under a lock file (through a symbolic link to the file
it leads to), an existing entry replaced only with ``--force``.
Neither ever writes a secret: a literal token in a header or the URL is refused, with the two
ways that keep it out of the file (``${VAR}`` plus the entry's ``env`` block, or
``mcp-remote-py auth set URL``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .entry import (
    SECRET_ADVICE,
    VARIABLE_REFERENCE,
    ConfigError,
    build_entry,
    command_for_this_install,
    install_entry,
    literal_secrets,
    relay_args_from_namespace,
    relay_parser,
)
from .file import default_config_path

PROG = "mcp-remote-py config"
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
    relay = relay_parser()
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
        except Exception:
            shown = "URL"
        sys.stderr.write(
            f"{PROG} {command}: refusing to write a secret into the config file: "
            + "; ".join(secrets)
            + ".\n"
            + SECRET_ADVICE.format(url=shown)
            + "\n"
        )
        return 1
    relay_args = relay_args_from_namespace(args)
    install = command_for_this_install()
    entry = build_entry(relay_args, install)
    path = Path(args.claude_config) if args.claude_config else default_config_path()
    notes = []
    if install.note:
        notes.append(install.note)
    variables = sorted({v[2:-1] for v in VARIABLE_REFERENCE.findall(" ".join(args.header))})
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
            f"(or run `mcp-remote-py config install {' '.join(shlex.quote(a) for a in rest)}`), "
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
        f'{verb} "{args.name}" in {done.path}'
        + (f" (a link: written to {done.target})" if done.target else "")
        + (" (new file)" if done.created else "")
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
