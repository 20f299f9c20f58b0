"""The relay's options: the one argument parser, and its arguments validated into RelayOptions.

Below the command line, so that ``doctor`` (which checks what the relay would do with the same
options) and the Claude Desktop config code (which writes a canonical entry from them) read them
without importing ``cli.py``. ``relay_options`` reads the credential store to decide whether a
stored bearer token is sent or OAuth answers the server's 401.

``unknown_argument`` names a mistyped option or subcommand with the one meant, before argparse
takes it for the URL. ``translate_mcp_remote`` turns the Node ``mcp-remote``'s arguments into the
relay's: every option of its that ``build_parser`` takes is carried over as it is, and
``MCP_REMOTE_OPTIONS`` says what becomes of the rest, so the translation cannot fall behind the
parser.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._version import __version__
from .core.errors import UsageError
from .core.headers import parse_header, parse_header_file

if TYPE_CHECKING:
    from .auth.credential import Credential
    from .shell.relay_options import OAuthSettings, RelayOptions

    Header = tuple[str, str]

__all__ = [
    "COMMANDS",
    "MCP_REMOTE_OPTIONS",
    "PROG",
    "McpRemoteOption",
    "build_parser",
    "relay_options",
    "translate_mcp_remote",
    "unknown_argument",
]

PROG = "mcp-remote-py"
# The subcommands `cli.main` dispatches before the relay's parser sees anything.
COMMANDS = ("auth", "config", "doctor")
MIB = 1024 * 1024

EPILOG = """\
other commands:
  mcp-remote-py doctor [URL] [options]      find why a connection fails (--selftest: check this
                                            install end to end, no server needed)
  mcp-remote-py config show|install URL --name NAME [options]
                                            the Claude Desktop entry for this install
  mcp-remote-py auth set|show|list|delete|login|set-client-secret URL
                                            stored tokens and OAuth sign-in (login --device:
                                            with a code, no browser here)

examples:
  mcp-remote-py https://mcp.example.com/mcp
  mcp-remote-py https://mcp.example.com/sse --transport sse-only
  mcp-remote-py https://mcp.example.com/mcp --header 'Authorization: Bearer ${API_TOKEN}'
  mcp-remote-py https://mcp.example.com/mcp --oauth-device     # sign in with a code, no browser
  MCP_HTTP_URL=https://mcp.example.com/mcp mcp-remote-py

Claude Desktop (claude_desktop_config.json):
  {"mcpServers": {"example": {"command": "mcp-remote-py",
    "args": ["https://mcp.example.com/mcp", "--header", "Authorization: Bearer ${API_TOKEN}"],
    "env": {"API_TOKEN": "..."}}}}

stdout carries only JSON-RPC; logs go to stderr and to the log file (see --log-file).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Relay a stdio MCP client (Claude Desktop, Cursor, ...) to a remote MCP "
        "server over Streamable HTTP or the legacy HTTP+SSE transport.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "url",
        nargs="?",
        help="the server's MCP endpoint, e.g. https://mcp.example.com/mcp "
        "(default: the MCP_HTTP_URL environment variable)",
    )
    parser.add_argument(
        "--transport",
        choices=("http-first", "sse-first", "http-only", "sse-only"),
        default="http-first",
        help="which transport to use; http-first (the default) falls back to legacy SSE when the "
        "server answers 400/404/405 to the initialize POST; a URL ending in /sse starts with SSE. "
        "e.g. --transport sse-only",
    )
    parser.add_argument(
        "--protocol",
        choices=("auto", "legacy", "modern"),
        default="auto",
        help="which MCP era to speak to the server: auto (the default) finds out, bridging a "
        "client of the 2025 protocol to a server that speaks only 2026-07-28 and passing "
        "2026-07-28 requests through; legacy never speaks 2026-07-28 to the server; modern "
        "takes the server to speak only 2026-07-28 (no refused initialize at start). "
        "e.g. --protocol legacy",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable); ${VAR} is expanded from the environment, and "
        "a missing variable is an error. e.g. --header 'Authorization: Bearer ${API_TOKEN}'",
    )
    parser.add_argument(
        "--header-file",
        metavar="PATH",
        help="read headers from a file, one 'Name: value' a line ('#' starts a comment). "
        "e.g. --header-file ~/.config/mcp/headers.txt",
    )
    parser.add_argument(
        "--credential-store",
        choices=("keyring", "file"),
        default=None,
        help="where the token stored with `mcp-remote-py auth set URL` is read from (default: "
        "the OS keyring, or a 0600 file where there is none). e.g. --credential-store file",
    )
    oauth = parser.add_argument_group(
        "sign-in (OAuth 2.1, used when the server answers 401 and no token was given)"
    )
    oauth.add_argument(
        "--auth-timeout",
        type=_positive_float,
        default=300.0,
        metavar="SECONDS",
        help="how long a sign-in (in the browser, or with an --oauth-device code) may take "
        "(default 300); initialize is answered within about 55 s either way, telling you how to "
        "finish it. e.g. --auth-timeout 120",
    )
    oauth.add_argument(
        "--oauth-client-id",
        metavar="ID",
        help="a client registered with the authorization server beforehand (default: dynamic "
        "registration). e.g. --oauth-client-id my-app",
    )
    oauth.add_argument(
        "--oauth-client-secret-env",
        metavar="VAR",
        help="the environment variable holding that client's secret (never the secret itself; "
        "default: MCP_REMOTE_PY_CLIENT_SECRET if set, else one stored with `mcp-remote-py auth "
        "set-client-secret URL`). e.g. --oauth-client-secret-env MCP_CLIENT_SECRET",
    )
    oauth.add_argument(
        "--oauth-device",
        action="store_true",
        help="sign in without a browser on this computer (RFC 8628 device authorization): "
        "the relay writes an address and a code to stderr, which Claude Desktop keeps in its "
        "MCP log (and the answer to initialize repeats them); open the address on any device "
        "and enter the code. e.g. --oauth-device",
    )
    oauth.add_argument(
        "--oauth-client-credentials",
        action="store_true",
        help="machine to machine, no user: get tokens with the client credentials grant "
        "(RFC 6749 §4.4) as the pre-registered --oauth-client-id, whose secret comes from "
        "--oauth-client-secret-env VAR, MCP_REMOTE_PY_CLIENT_SECRET or `mcp-remote-py auth "
        "set-client-secret URL`; a new token is fetched when one expires. "
        "e.g. --oauth-client-credentials --oauth-client-id svc --oauth-client-secret-env SVC_KEY",
    )
    oauth.add_argument(
        "--client-metadata-url",
        metavar="URL",
        help="this client's Client ID Metadata Document, used where the authorization server "
        "supports them. e.g. --client-metadata-url https://example.com/client.json",
    )
    oauth.add_argument(
        "--resource",
        metavar="URL",
        help="the RFC 8707 resource to ask tokens for (default: the server's). "
        "e.g. --resource https://mcp.example.com",
    )
    oauth.add_argument(
        "--callback-port",
        type=int,
        default=0,
        metavar="PORT",
        help="the loopback port for the sign-in redirect (default: any free one); match a "
        "pre-registered redirect URI. e.g. --callback-port 33418",
    )
    parser.add_argument(
        "--ipv4",
        action="store_true",
        help="resolve names to IPv4 addresses only, for hosts whose IPv6 path is broken "
        "(e.g. localhost resolving to ::1 while the server listens on 127.0.0.1). e.g. --ipv4",
    )
    # HTTP/2 is measured (python -m bench.run --tls --http2), not offered: on loopback TLS it
    # cost 0.5 ms more per call, twice the time for a 5 MB answer and 20-50% more CPU, with no
    # more calls per second; and httpcore fails the requests in flight when a server ends a
    # connection with GOAWAY, as nginx does every 1000 requests (encode/httpcore#1054).
    parser.add_argument("--http2", action="store_true", help=argparse.SUPPRESS)
    # The escape hatch from the built-in HTTP/1.1 (http1.py) to httpx's own transport, and the
    # way to measure one against the other (bench/README.md).
    parser.add_argument("--httpx-transport", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--ca-file",
        metavar="PATH",
        help="also trust this CA certificate (PEM), e.g. a corporate TLS-inspection CA; the "
        "system trust store is always used. e.g. --ca-file /etc/ssl/certs/corp-ca.pem",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates (dangerous: anyone on the path can read your "
        "traffic and tokens). e.g. --insecure",
    )
    parser.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http:// to a host that is not loopback (tokens would cross the network "
        "in clear). e.g. --allow-http",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="give up connecting after this long (default 10). e.g. --connect-timeout 30",
    )
    parser.add_argument(
        "--startup-timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="how long to keep trying to reach the server at start before initialize is "
        "answered with an error (default 30; Claude Desktop gives up after about 60). "
        "e.g. --startup-timeout 50",
    )
    parser.add_argument(
        "--request-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="answer a request with an error if the server has not answered it within this "
        "long (default: no limit). e.g. --request-timeout 300",
    )
    parser.add_argument(
        "--reconnect-delay",
        type=_positive_float,
        default=0.5,
        metavar="SECONDS",
        help="the first wait before trying an unreachable server again; it doubles each try "
        "(default 0.5). e.g. --reconnect-delay 1",
    )
    parser.add_argument(
        "--max-reconnect-delay",
        type=_positive_float,
        default=15.0,
        metavar="SECONDS",
        help="the longest wait between tries (default 15); a server's Retry-After or SSE retry "
        "wins, up to 5 minutes. e.g. --max-reconnect-delay 60",
    )
    parser.add_argument(
        "--max-retries",
        type=_count,
        default=20,
        metavar="N",
        help="how many times to try again before a request gets an error (default 20, about "
        "3 minutes with the default delays; 0 means for ever). e.g. --max-retries 0",
    )
    parser.add_argument(
        "--keepalive",
        type=_non_negative_float,
        default=30.0,
        metavar="SECONDS",
        help="ping the server after this long without traffic, so a dropped session or a dead "
        "network path is noticed and repaired before your next call (default 30; 0 turns it "
        "off). e.g. --keepalive 60",
    )
    parser.add_argument(
        "--max-message-size",
        type=_mebibytes,
        default=256,
        metavar="MIB",
        help="the largest single message the relay carries, in MiB (default 256): a server "
        "answer over it is dropped as it arrives and its request answered with an error, other "
        "server messages over it are dropped with a warning, and a client line over it is "
        "dropped; everything else goes on. e.g. --max-message-size 1024",
    )
    parser.add_argument(
        "--ignore-tool",
        action="append",
        default=[],
        metavar="PATTERN",
        help="hide tools whose name matches this glob (case-insensitive, repeatable) from "
        "tools/list and refuse calls to them. e.g. --ignore-tool 'delete_*'",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="how much to log on stderr (default info). e.g. --log-level warning",
    )
    parser.add_argument(
        "--debug", action="store_true", help="the same as --log-level debug. e.g. --debug"
    )
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        help=f"where the rotating log file goes (default: {_default_log_file()}). "
        "e.g. --log-file /tmp/mcp-remote-py.log",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _default_log_file() -> str:
    from .shell.logs import default_log_file

    return str(default_log_file())


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _mebibytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of MiB") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _non_negative_float(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0.0") else _positive_float(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def relay_options(args: argparse.Namespace, environ: Mapping[str, str]) -> RelayOptions:
    """Validate the parsed arguments into RelayOptions; UsageError says what is wrong."""
    import httpx

    from .core.backoff import Backoff
    from .shell.net import NetworkOptions, is_loopback_host
    from .shell.relay_options import RelayOptions

    raw_url = args.url or environ.get("MCP_HTTP_URL", "")
    if not raw_url:
        raise UsageError("no server URL: give it as the first argument, or set MCP_HTTP_URL")
    try:
        url = httpx.URL(raw_url.strip())
    except httpx.InvalidURL as exc:
        raise UsageError(f"{raw_url!r} is not a valid URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(
            f"{raw_url!r} is not an http:// or https:// URL with a host, "
            "e.g. https://mcp.example.com/mcp"
        )
    if url.scheme == "http" and not args.allow_http and not is_loopback_host(url.host):
        raise UsageError(
            f"refusing plain http:// to {url.host}: headers and tokens would cross the network "
            "unencrypted. Use https://, or pass --allow-http if this network is trusted"
        )

    headers = [parse_header(h, environ) for h in args.header]
    if args.header_file:
        path = Path(os.path.expanduser(args.header_file))
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read --header-file {path}: {exc.strerror}") from None
        headers = parse_header_file(content, environ, str(path)) + headers
    oauth: OAuthSettings | None = None
    oauth_stored = False
    if not any(name.lower() == "authorization" for name, _ in headers):
        # A bearer token stored with `auth set` is sent as it is; otherwise OAuth answers the
        # server's 401 (with the tokens of `auth login`, if any, from the first request on).
        stored, header = _stored_credential(raw_url, args.credential_store)
        if header is not None:
            headers.append(header)
        else:
            oauth = _oauth_settings(args, environ, stored)
            oauth_stored = stored is not None and stored.kind == "oauth"
    if args.max_reconnect_delay < args.reconnect_delay:
        raise UsageError("--max-reconnect-delay must not be shorter than --reconnect-delay")
    if args.ca_file and not Path(args.ca_file).is_file():
        raise UsageError(f"--ca-file {args.ca_file}: no such file")
    if args.ipv4 and url.host.count(":") >= 2:
        raise UsageError(f"--ipv4 cannot reach the IPv6 address {url.host}")
    return RelayOptions(
        url=url,
        transport=args.transport,
        protocol=args.protocol,
        network=NetworkOptions(
            connect_timeout=args.connect_timeout,
            ca_file=args.ca_file,
            insecure=args.insecure,
            ipv4=args.ipv4,
            headers=tuple(headers),
            tcp_keepalive=args.keepalive,
            http2=args.http2,
            httpx_transport=args.httpx_transport,
            max_message=args.max_message_size * MIB,
        ),
        ignore_tools=list(args.ignore_tool),
        request_timeout=args.request_timeout,
        initialize_deadline=args.startup_timeout,
        backoff=Backoff(initial=args.reconnect_delay, maximum=args.max_reconnect_delay),
        max_retries=args.max_retries,
        keepalive=args.keepalive,
        max_line=args.max_message_size * MIB,
        oauth=oauth,
        oauth_at_start=oauth_stored,
        credential_store=args.credential_store,
    )


def _stored_credential(url: str, store_kind: str | None) -> tuple[Credential | None, Header | None]:
    """The credential stored for exactly this server, and the header to send when it is a
    bearer token from ``auth set`` (OAuth tokens are kept fresh by the relay instead)."""
    import logging

    from .auth.store import CredentialStore, CredentialStoreError

    try:
        store = CredentialStore(store_kind, warn=logging.getLogger("mcp_remote_py").warning)
        credential = store.get(url.strip())
    except (CredentialStoreError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if credential is None:
        return None, None
    if credential.kind == "bearer":
        if not credential.access_token.isascii() or not credential.access_token.isprintable():
            # Stored before `auth set` refused such tokens: it could not be sent.
            raise UsageError(
                f"the token stored for {url.strip()} contains characters an HTTP header cannot "
                f"carry; store it again with `mcp-remote-py auth set {url.strip()}`"
            )
        return credential, ("Authorization", f"Bearer {credential.access_token}")
    return credential, None


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _client_secret(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """A pre-registered client's secret: from the variable --oauth-client-secret-env names,
    else $MCP_REMOTE_PY_CLIENT_SECRET (with --oauth-client-id); never from the command line."""
    from .auth.oauth_options import CLIENT_SECRET_ENV

    name = args.oauth_client_secret_env
    if name:
        if not _ENV_NAME.match(name):
            # Not a variable's name: perhaps the secret itself. Not repeated here.
            raise UsageError(
                "--oauth-client-secret-env takes the NAME of an environment variable that holds "
                "the secret, not the secret itself (a secret on the command line shows in "
                "process lists). Put the secret in a variable, e.g. MCP_CLIENT_SECRET, and pass "
                f"--oauth-client-secret-env MCP_CLIENT_SECRET; or set {CLIENT_SECRET_ENV}"
            )
        secret = environ.get(name)
        if not secret:
            raise UsageError(
                f"--oauth-client-secret-env {name}: that environment variable is not set"
            )
        return secret
    if args.oauth_client_id:
        return environ.get(CLIENT_SECRET_ENV) or None
    return None


def _oauth_settings(
    args: argparse.Namespace, environ: Mapping[str, str], stored: Credential | None
) -> OAuthSettings:
    from .auth.oauth_options import (
        AUTHORIZATION_CODE,
        CLIENT_CREDENTIALS,
        CLIENT_SECRET_ENV,
        DEVICE_CODE,
        GrantSettings,
    )

    if args.oauth_client_secret_env and not args.oauth_client_id:
        raise UsageError("--oauth-client-secret-env needs --oauth-client-id")
    secret = _client_secret(args, environ)
    device = getattr(args, "oauth_device", False)
    machine = getattr(args, "oauth_client_credentials", False)
    if device and machine:
        raise UsageError(
            "--oauth-device and --oauth-client-credentials exclude each other: the first signs "
            "a user in, the second has no user"
        )
    grant = DEVICE_CODE if device else CLIENT_CREDENTIALS if machine else AUTHORIZATION_CODE
    if machine:
        client = (stored.client or {}) if stored is not None else {}
        stored_id = client.get("client_id") if client.get("registration") == "static" else None
        client_id = args.oauth_client_id or stored_id
        if not client_id:
            raise UsageError(
                "--oauth-client-credentials needs a pre-registered client: pass "
                "--oauth-client-id ID (or store its secret with `mcp-remote-py auth "
                "set-client-secret URL --oauth-client-id ID`)"
            )
        stored_secret = stored is not None and (
            (stored.kind == "client" and stored_id == client_id)
            or (stored.kind == "oauth" and stored_id == client_id and client.get("client_secret"))
        )
        if not secret and not stored_secret:
            raise UsageError(
                f"--oauth-client-credentials needs the secret of the client {client_id}, and "
                "none was found: put it in an environment variable and pass "
                f"--oauth-client-secret-env VAR, or set {CLIENT_SECRET_ENV}, or store it once "
                f"with `mcp-remote-py auth set-client-secret URL --oauth-client-id {client_id}` "
                "(never on the command line)"
            )
    return GrantSettings(
        client_id=args.oauth_client_id,
        client_secret=secret,
        client_metadata_url=args.client_metadata_url,
        resource=args.resource,
        callback_port=args.callback_port,
        auth_timeout=args.auth_timeout,
        allow_http=args.allow_http,
        grant=grant,
    )


# --------------------------------------------------------------------------- unknown arguments

_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
# Options someone might try a client secret with; refused, naming the environment variable way.
_SECRET_OPTIONS = frozenset({"--oauth-client-secret", "--client-secret", "--secret"})
_BARE_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def unknown_argument(
    parser: argparse.ArgumentParser, argv: Sequence[str], commands: Sequence[str] = ()
) -> str | None:
    """What is wrong with the first argument ``parser`` cannot know, said so a user can act on
    it, or None when argparse may go on.

    argparse itself gets both wrong: it takes the value of a mistyped option for the server URL
    (``--hedaer X:1 https://x/mcp`` makes ``X:1`` the URL and reports the real URL as the
    unrecognised argument), and a mistyped subcommand for the URL too. Here an option it does
    not know is named, with the closest one it does (``unknown option --hedaer (did you mean
    --header?)``); with ``commands``, so is a first argument that is a bare word close to one of
    them, or followed by a URL (``unknown command docter (did you mean doctor?)``).
    """
    known = {
        option
        for action in parser._actions
        for option in action.option_strings
        if action.help != argparse.SUPPRESS
    }
    hidden = {option for action in parser._actions for option in action.option_strings} - known
    words = list(argv)
    if commands and words and _BARE_WORD.match(words[0]):
        first = words[0]
        close = difflib.get_close_matches(first, commands, n=1, cutoff=0.6)
        if close:
            return f"unknown command {first} (did you mean {close[0]}?)"
        if any("://" in word for word in words[1:]):
            return f"unknown command {first} (the commands are {', '.join(commands)})"
    for word in words:
        if word == "--":
            break
        if not word.startswith("-") or word == "-" or _NEGATIVE_NUMBER.match(word):
            continue
        name = word.partition("=")[0] if word.startswith("--") else word
        if name in known or name in hidden:
            continue
        if name in _SECRET_OPTIONS:
            return (
                f"{name}: a client secret is never taken from the command line (process lists "
                "and shell history would show it). Put it in an environment variable and pass "
                "--oauth-client-secret-env VAR, or set MCP_REMOTE_PY_CLIENT_SECRET, or store it "
                "once with `mcp-remote-py auth set-client-secret URL --oauth-client-id ID`"
            )
        if name.startswith("--") and any(option.startswith(name) for option in known):
            continue  # an abbreviation: argparse takes it, or says which options it could be
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        return f"unknown option {name}" + (f" (did you mean {close[0]}?)" if close else "")
    return None


# --------------------------------------------------------------------------- the Node mcp-remote

VALUE = "{value}"


@dataclass(frozen=True)
class McpRemoteOption:
    """One of the Node ``mcp-remote``'s options that the relay's parser does not take as it is:
    the arguments it becomes here (``VALUE`` stands for its value), or, with none, why it is
    dropped (``note``)."""

    takes_value: bool
    args: tuple[str, ...] = ()
    note: str = ""


def _unsupported(takes_value: bool, what: str) -> McpRemoteOption:
    return McpRemoteOption(takes_value, note=f"({what}) is not supported; dropped")


# Every option of mcp-remote's that ``build_parser`` takes means the same here and is carried
# over as it is (its value checked by the parser's own choices and type): the parser is the
# table of those, so it cannot fall behind the relay. This table holds only the rest, and no key
# of it may be an option of the parser (tests/unit/test_options.py keeps it so).
MCP_REMOTE_OPTIONS: dict[str, McpRemoteOption] = {
    "--silent": McpRemoteOption(False, ("--log-level", "error")),
    "--ping-interval": McpRemoteOption(True, ("--keepalive", VALUE)),
    "--enable-proxy": McpRemoteOption(
        False, note="is not needed: mcp-remote-py always honours HTTPS_PROXY"
    ),
    "--keep-alive": McpRemoteOption(
        False, note="is not needed: mcp-remote-py pings an idle session (--keepalive, 30 s)"
    ),
    "--host": _unsupported(True, "OAuth callback host: the sign-in redirect comes to localhost"),
    "--callback-path": _unsupported(True, "OAuth callback path"),
    "--static-oauth-client-metadata": _unsupported(True, "OAuth client metadata"),
    "--static-oauth-client-info": _unsupported(
        True,
        "OAuth client registration: give --oauth-client-id ID and, for a secret, "
        "--oauth-client-secret-env VAR",
    ),
    "--authorize-param": _unsupported(True, "OAuth authorize parameters"),
    "--token-endpoint": _unsupported(True, "OAuth token endpoint"),
    "--headers-timeout": _unsupported(
        True, "undici timeouts (mcp-remote-py has none to set: streams are unbounded)"
    ),
    "--body-timeout": _unsupported(
        True, "undici timeouts (mcp-remote-py has none to set: streams are unbounded)"
    ),
    "--disable-resource-parameter": _unsupported(False, "OAuth resource parameter"),
    "--device-code": McpRemoteOption(False, ("--oauth-device",)),
    # Not carried over: the client it needs comes from --static-oauth-client-info, dropped above.
    "--client-credentials": _unsupported(
        False,
        "OAuth client credentials grant: give --oauth-client-credentials --oauth-client-id ID "
        "and the secret with --oauth-client-secret-env VAR",
    ),
    "--use-id-token": _unsupported(False, "OAuth id token"),
    "--disable-cookies": _unsupported(False, "cookies"),
}


def translate_mcp_remote(
    args: Sequence[str], header: Callable[[str], tuple[str, str | None]] | None = None
) -> tuple[str | None, list[str], list[str]]:
    """The Node ``mcp-remote``'s arguments (after its name) as the relay's: the server URL (None
    when there is none), the relay's other arguments, and notes on what changed or was dropped.

    ``header`` sees each ``--header`` value and returns the value to write and a note (the config
    code replaces a literal token with a ``${VAR}`` reference there). mcp-remote's positional
    number after the URL, its OAuth callback port, becomes ``--callback-port``.
    """
    parser_options = {
        option: action
        for action in build_parser()._actions
        for option in action.option_strings
        if action.dest not in ("help", "version")
    }
    out: list[str] = []
    notes: list[str] = []
    url: str | None = None
    items = list(args)
    index = 0
    while index < len(items):
        word = items[index]
        index += 1
        if not word.startswith("-"):
            if url is None:
                url = word
            elif word.isdigit() and "--callback-port" not in out:
                out += ["--callback-port", word]
            else:
                notes.append(f"ignored the extra argument {word!r}")
            continue
        flag, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        action = parser_options.get(flag)
        known = MCP_REMOTE_OPTIONS.get(flag)
        if action is None and known is None:
            notes.append(f"unknown mcp-remote option {flag}; dropped")
            continue
        takes_value = action.nargs != 0 if action is not None else bool(known and known.takes_value)
        value: str | None = None
        if takes_value:
            if eq:
                value = inline
            elif index < len(items):
                value = items[index]
                index += 1
            else:
                notes.append(f"{flag} had no value; dropped")
                continue
        if action is None:
            assert known is not None
            if not known.args:
                notes.append(f"{flag} {known.note}")
            out += [value if arg == VALUE and value is not None else arg for arg in known.args]
            continue
        if value is None:
            out.append(flag)
            continue
        problem = _value_problem(action, value)
        if problem:
            notes.append(f"{flag} {value!r} {problem}; dropped")
            continue
        if flag == "--header" and header is not None:
            value, note = header(value)
            if note:
                notes.append(note)
        out += [flag, value]
    return url, out, notes


def _value_problem(action: argparse.Action, value: str) -> str | None:
    """Why the relay's parser would refuse ``value`` for ``action``, or None."""
    if action.choices is not None and value not in action.choices:
        return f"is not one of {', '.join(str(choice) for choice in action.choices)}"
    if callable(action.type):
        try:
            action.type(value)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            return f"is refused ({exc})"
    return None
