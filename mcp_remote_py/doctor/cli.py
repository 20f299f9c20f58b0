"""``mcp-remote-py doctor [URL] [relay options]`` and ``mcp-remote-py doctor --selftest``.

``main(argv)`` takes the arguments after ``doctor`` and returns the exit status: 0 when no check
failed, 1 when one did, 2 for a usage error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .report import FAIL, Masker, Report, use_colour

__all__ = ["build_parser", "main"]

PROG = "mcp-remote-py doctor"

_EPILOG = """\
examples:
  mcp-remote-py doctor                                   # this machine only
  mcp-remote-py doctor https://mcp.example.com/mcp       # and that server
  mcp-remote-py doctor https://mcp.example.com/mcp --ca-file corp-ca.pem --ipv4
  mcp-remote-py doctor https://mcp.example.com/mcp --soak 120   # watch a stream for 2 minutes
  mcp-remote-py doctor --selftest                        # the relay end to end, offline
  mcp-remote-py doctor https://mcp.example.com/mcp --json

Give it the same options as the relay (from your client's config) and it checks what the relay
would do with them. Exit status: 0 when nothing failed, 1 when something did. Nothing secret is
printed: header values, tokens, proxy passwords and query strings are masked."""


def build_parser() -> argparse.ArgumentParser:
    from ..options import build_parser as relay_parser

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check this machine, and with a URL the server and everything between, for "
        "what stops mcp-remote-py from working; print the fix for each problem.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[relay_parser()],
        add_help=False,
        conflict_handler="resolve",
    )
    parser.add_argument("-h", "--help", action="help", help="show this help and exit")
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON (for machines)"
    )
    parser.add_argument(
        "--selftest",
        action="store_true",
        help="run an MCP server in this process and relay a scripted session through it, on "
        "both transports (no network needed)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="hold an event stream open this long and report when something cuts it "
        "(e.g. --soak 120 finds nginx's 60 s proxy_read_timeout)",
    )
    parser.add_argument(
        "--claude-config",
        metavar="PATH",
        help="the claude_desktop_config.json to check (default: this OS's)",
    )
    parser.add_argument(
        "--no-claude-config", action="store_true", help="skip the Claude Desktop config check"
    )
    return parser


def _environment() -> dict[str, str]:
    # doctor URL is explicit: MCP_HTTP_URL does not turn the remote checks on by itself.
    return {k: v for k, v in os.environ.items() if k != "MCP_HTTP_URL"}


def main(argv: list[str]) -> int:
    from ..core.headers import join_split_header_args
    from ..options import unknown_argument

    parser = build_parser()
    argv = join_split_header_args(list(argv))
    try:
        problem = unknown_argument(parser, argv)
        if problem:
            parser.error(problem)
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.soak < 0:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{PROG}: error: --soak must be 0 or more seconds\n")
        return 2
    environ = _environment()
    from .local import proxy_secrets

    masker = Masker(proxy_secrets(environ))
    for header in args.header:
        masker.add(header.strip(), header.partition(":")[2].strip())
    report = Report(masker)
    _quiet_relay_logs(masker, args.debug or args.log_level == "debug")
    if not args.json:
        report.stream_to(sys.stdout, use_colour(sys.stdout))
    try:
        if args.selftest:
            _run_selftest(report)
        else:
            _run_doctor(report, args, environ)
        if args.json:
            sys.stdout.write(report.to_json() + "\n")
        else:
            sys.stdout.write("\n" + report.summary_line() + "\n")
        sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`doctor | head`): no traceback, and no second one at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return report.exit_status()


class _MaskingHandler(logging.Handler):
    """The relay's log lines on stderr, masked like the report (only with --debug)."""

    def __init__(self, masker: Masker) -> None:
        super().__init__(logging.DEBUG)
        self.masker = masker

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a log line must never break the doctor
            sys.stderr.write(f"doctor: {self.masker(record.getMessage())}\n")


def _quiet_relay_logs(masker: Masker, debug: bool) -> None:
    """The relay's code logs to "mcp_remote_py"; the doctor reports instead. Without a handler,
    logging's last resort would print warnings unmasked on stderr."""
    logger = logging.getLogger("mcp_remote_py")
    logger.handlers.clear()
    logger.propagate = False
    if debug:
        logger.addHandler(_MaskingHandler(masker))
        logger.setLevel(logging.DEBUG)
    else:
        logger.addHandler(logging.NullHandler())


def _run_selftest(report: Report) -> None:
    import trio

    from .selftest import run_selftest

    report.facts["selftest"] = True
    trio.run(run_selftest, report)


def _run_doctor(report: Report, args: argparse.Namespace, environ: dict[str, str]) -> None:
    from .local import run_local

    run_local(
        report,
        store_kind=args.credential_store,
        ca_file=args.ca_file,
        claude_config=Path(args.claude_config) if args.claude_config else None,
        environ=environ,
        skip_claude=args.no_claude_config,
    )
    if not args.url:
        return
    target = _target(report, args, environ)
    if target is None:
        return
    import trio

    from .network import HostsResolver, load_hosts

    try:
        target.hosts = load_hosts(environ)
    except (OSError, ValueError) as exc:
        report.add("remote.options", "Remote", FAIL, f"cannot read the hosts override: {exc}")
        return
    report.facts["url"] = target.shown

    async def remote() -> None:
        from ..shell.net import install_ipv4_resolver
        from .remote import run_remote

        if target.hosts:
            trio.socket.set_custom_hostname_resolver(HostsResolver(target.hosts, target.net.ipv4))
        elif target.net.ipv4:
            install_ipv4_resolver()
        await run_remote(report, target)

    trio.run(remote)


def _target(report: Report, args: argparse.Namespace, environ: dict[str, str]) -> Any:
    from ..core.errors import UsageError
    from ..options import relay_options
    from .remote import Target

    section = "Remote"
    try:
        options = relay_options(args, environ)
    except UsageError as exc:
        report.add(
            "remote.options",
            section,
            FAIL,
            f"the relay would refuse these options: {exc}",
            fix="Correct the URL or options (see `mcp-remote-py --help`)",
        )
        return None
    report.masker.add(*(value for _, value in options.network.headers))
    for _, value in options.network.headers:
        if value.lower().startswith(("bearer ", "basic ", "token ")):
            report.masker.add(value.split(None, 1)[1])
    user_auth = any(h.partition(":")[0].strip().lower() == "authorization" for h in args.header)
    stored, store_error = _stored(args, report)
    if args.header_file and not user_auth and stored is None:
        user_auth = any(name.lower() == "authorization" for name, _ in options.network.headers)
    target = Target(
        options=options,
        user_auth=user_auth,
        stored=stored,
        store_error=store_error,
        soak=args.soak,
    )
    return target


def _stored(args: argparse.Namespace, report: Report) -> tuple[Any, str | None]:
    """The credential stored for this URL (and where), masked in the report from now on."""
    from ..auth.store import CredentialStore, CredentialStoreError

    try:
        store = CredentialStore(args.credential_store, warn=lambda _message: None)
        found = store.lookup(args.url.strip())
    except (CredentialStoreError, ValueError) as exc:
        return None, str(exc)
    if found is not None:
        credential = found[0]
        report.masker.add(credential.access_token)
        if credential.refresh_token:
            report.masker.add(credential.refresh_token)
    return found, None
