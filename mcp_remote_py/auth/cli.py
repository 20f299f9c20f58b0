"""``mcp-remote-py auth set|show|list|delete|login|set-client-secret``: a server's credential.

``set`` stores a bearer token; ``login`` signs in with OAuth (in the browser, or with ``--device``
by a code entered on another device) and stores the tokens (``oauth.py`` does the work);
``set-client-secret`` stores a pre-registered OAuth client's secret, for the client credentials
grant (``--oauth-client-credentials``) or any sign-in as that client. ``main(argv)`` takes the
arguments after ``auth`` and returns the exit status: 0 done, 1 nothing stored (``show``,
``delete``), the store cannot be used or the sign-in failed, 2 a usage error, 130 interrupted.

A token or a client secret is read from a no-echo prompt on a terminal, or as one line from
stdin; never from the command line (process lists and shell history would show it). No output
or error ever shows a secret in full: tokens are masked (``abcd…wxyz``), and an argument that
might be a token is masked when an error has to mention it.
"""

from __future__ import annotations

import argparse
import getpass
import os
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
_SAFE_WORDS = frozenset(
    {
        "set",
        "show",
        "list",
        "delete",
        "login",
        "set-client-secret",
        "--device",
        "--credential-store",
        "--help",
        "-h",
        "--oauth-client-id",
        "--oauth-client-secret-env",
        "--client-metadata-url",
        "--resource",
        "--disable-resource-parameter",
        "--scope",
        "--callback-port",
        "--auth-timeout",
        "--no-browser",
        "--allow-http",
        "--ca-file",
    }
)
_MIN_MASKED = 8
_BEARER_PREFIX = re.compile(r"^bearer(?:\s+|$)", re.IGNORECASE)

_DESCRIPTION = """\
Store a server's bearer token once (or sign in with OAuth: login), and mcp-remote-py sends it as
'Authorization: Bearer ...' to that server (and only to it: same scheme, host, port and path)
when no --header Authorization is given. Tokens live in the OS keyring (macOS Keychain, Windows
Credential Manager, Secret Service on Linux); where there is none, in a file readable only by
you, with a warning."""

_EPILOG = f"""\
examples:
  mcp-remote-py auth set https://mcp.example.com/mcp          # then type the token (not shown)
  printenv API_TOKEN | mcp-remote-py auth set https://mcp.example.com/mcp
  mcp-remote-py auth show https://mcp.example.com/mcp
  mcp-remote-py auth list
  mcp-remote-py auth delete https://mcp.example.com/mcp
  mcp-remote-py auth login https://mcp.example.com/mcp        # OAuth: sign in in the browser
  mcp-remote-py auth login https://mcp.example.com/mcp --device   # no browser here: a code
  printenv SVC_SECRET | mcp-remote-py auth set-client-secret https://mcp.example.com/mcp \
      --oauth-client-id svc                                    # for --oauth-client-credentials

--credential-store keyring|file (or {STORE_KIND_ENV}) chooses where tokens live; the
default uses the OS keyring when there is one and the file otherwise. MCP_REMOTE_PY_CONFIG_DIR
moves the file and the keyring's list of servers (default: the user config directory)."""

_LOGIN_EPILOG = """\
Finds the server's authorization server (from its 401 answer), registers mcp-remote-py with it
when needed, opens your browser to sign in, and stores the tokens for that server, where the
relay finds and refreshes them. One sign-in per server at a time: another mcp-remote-py signing
in to the same server is waited for, and its tokens are used.

With --device (RFC 8628 device authorization, for a machine without a browser) it prints an
address and a code instead: open the address on any device (a phone, another computer), enter
the code and sign in there; the command waits for that and stores the tokens.

A pre-registered client's secret is never taken from the command line: it is read from the
environment variable --oauth-client-secret-env names, else MCP_REMOTE_PY_CLIENT_SECRET, else the
one stored with `auth set-client-secret`, else a hidden prompt on a terminal (leave it empty for
a public client).

examples:
  mcp-remote-py auth login https://mcp.example.com/mcp
  mcp-remote-py auth login https://mcp.example.com/mcp --device
  mcp-remote-py auth login https://mcp.example.com/mcp --scope 'files:read files:write'
  mcp-remote-py auth login https://mcp.example.com/mcp --oauth-client-id my-app \\
      --oauth-client-secret-env MY_APP_SECRET --callback-port 8765
  mcp-remote-py auth login https://mcp.example.com/mcp --no-browser   # prints the URL"""

_CLIENT_SECRET_EPILOG = """\
Stores the secret of an OAuth client registered with the server's authorization server
beforehand, for that server only. The relay then signs in as that client: with
--oauth-client-credentials (machine to machine, no user), or in the browser or with a device
code. The secret is read from a hidden prompt on a terminal, or as one line from standard
input; never from the command line. `auth delete URL` forgets it (with any tokens).

examples:
  mcp-remote-py auth set-client-secret https://mcp.example.com/mcp --oauth-client-id svc
  printenv SVC_SECRET | mcp-remote-py auth set-client-secret https://mcp.example.com/mcp \\
      --oauth-client-id svc
  mcp-remote-py https://mcp.example.com/mcp --oauth-client-credentials   # then, in the entry"""

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
    _add_login(
        command(
            "login",
            "sign in to a server with OAuth (in the browser, or --device: a code entered on "
            "another device)",
            _LOGIN_EPILOG,
        )
    )
    cmd = command(
        "set-client-secret",
        "store a pre-registered OAuth client's secret for a server (read from a hidden prompt "
        "or stdin), e.g. for --oauth-client-credentials",
        _CLIENT_SECRET_EPILOG,
    )
    cmd.add_argument("url", metavar="URL", help=f"{url_help}, e.g. https://mcp.example.com/mcp")
    cmd.add_argument(
        "--oauth-client-id",
        metavar="ID",
        required=True,
        help="the client's id at the authorization server, e.g. --oauth-client-id svc",
    )
    return parser


def _add_login(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "url", metavar="URL", help="the server's MCP endpoint, e.g. https://mcp.example.com/mcp"
    )
    cmd.add_argument(
        "--oauth-client-id",
        metavar="ID",
        help="a client registered with the authorization server beforehand, e.g. "
        "--oauth-client-id my-app (default: register dynamically)",
    )
    cmd.add_argument(
        "--oauth-client-secret-env",
        metavar="VAR",
        help="the environment variable holding that client's secret, e.g. "
        "--oauth-client-secret-env MY_APP_SECRET (default: ask on a terminal)",
    )
    cmd.add_argument(
        "--client-metadata-url",
        metavar="URL",
        help="this client's Client ID Metadata Document, used as the client id where the "
        "authorization server supports them, e.g. https://example.com/mcp-client.json",
    )
    cmd.add_argument(
        "--resource",
        metavar="URL",
        help="the RFC 8707 resource to ask for (default: the one the server names, else its "
        "URL), e.g. --resource https://mcp.example.com",
    )
    cmd.add_argument(
        "--disable-resource-parameter",
        action="store_true",
        help="do not send the resource parameter (for authorization servers that reject it)",
    )
    cmd.add_argument(
        "--scope",
        metavar="S",
        help="the scopes to ask for, space-separated (default: what the server asks for), "
        "e.g. --scope 'files:read files:write'",
    )
    cmd.add_argument(
        "--callback-port",
        type=int,
        default=0,
        metavar="N",
        help="the port on 127.0.0.1 the browser returns to (default: the one registered "
        "before, else any free one), e.g. --callback-port 8765",
    )
    cmd.add_argument(
        "--auth-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="how long to wait for the sign-in in the browser, in seconds (default 300)",
    )
    cmd.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser: print the URL to open (on this computer) instead",
    )
    cmd.add_argument(
        "--device",
        action="store_true",
        help="sign in on another device (RFC 8628 device authorization), for a computer "
        "without a browser: prints an address and a code to enter there",
    )
    cmd.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http:// to a server that is not on this computer",
    )
    cmd.add_argument(
        "--ca-file",
        metavar="PATH",
        help="also trust this CA (PEM), e.g. a corporate TLS-inspection CA",
    )


def _open_store(store_kind: str | None) -> CredentialStore:
    """The store the commands use (tests replace this to inject a keyring backend)."""
    return CredentialStore(store_kind)


def _out(text: str) -> None:
    print(text, flush=True)


def _prompt(text: str) -> None:
    """The device grant's instructions: on the command's output, where the user looks."""
    _out(text[:1].upper() + text[1:])


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
    if not token.isascii():
        # RFC 6750 §2.1: a b64token is ASCII; the header could not be sent.
        raise _UsageFailure(
            "the token contains non-ASCII characters, which a bearer token never has (a "
            "pasted typographic quote or dash?): nothing was stored"
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
    if credential.kind == "client":
        _out(f"  client: {(credential.client or {}).get('client_id')} (pre-registered)")
        _out(f"  client secret: {mask_secret(credential.access_token)}")
        if credential.saved_at:
            _out(f"  saved: {_when(credential.saved_at)}")
        _out(f"  store: {where}")
        return 0
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


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _read_secret(prompt: str, stdin: TextIO | None, example: str) -> str:
    """One line of secret from a hidden prompt or stdin (never argv)."""
    if stdin is None or stdin.closed:
        raise _UsageFailure(f"no secret: standard input is closed; pipe it in, e.g. {example}")
    line = getpass.getpass(prompt) if stdin.isatty() else stdin.readline()
    secret = line.strip()
    if not secret:
        raise _UsageFailure(
            f"empty secret: nothing was stored. Type it at the prompt, or {example}"
        )
    if any(not c.isprintable() for c in secret):
        raise _UsageFailure("the secret contains control characters: nothing was stored")
    return secret


def _login_options(args: argparse.Namespace, store: CredentialStore) -> Any:
    """Validate ``auth login``'s arguments into OAuthOptions (the secret from env or prompt)."""
    import httpx

    from ..shell.net import is_loopback_host
    from .oauth import OAuthOptions
    from .oauth_options import AUTHORIZATION_CODE, CLIENT_SECRET_ENV, DEVICE_CODE

    url = httpx.URL(args.url.strip())
    if url.scheme == "http" and not args.allow_http and not is_loopback_host(url.host):
        raise _UsageFailure(
            f"refusing plain http:// to {url.host}: tokens would cross the network unencrypted. "
            "Use https://, or pass --allow-http if this network is trusted"
        )
    if not 0 <= args.callback_port <= 65535:
        raise _UsageFailure("--callback-port must be between 0 and 65535 (0: any free port)")
    if not args.auth_timeout > 0:
        raise _UsageFailure("--auth-timeout must be a positive number of seconds")
    if args.ca_file and not os.path.isfile(args.ca_file):
        raise _UsageFailure(f"--ca-file {args.ca_file}: no such file")
    secret: str | None = None
    if args.oauth_client_secret_env:
        if not args.oauth_client_id:
            raise _UsageFailure("--oauth-client-secret-env needs --oauth-client-id")
        if not _ENV_NAME.match(args.oauth_client_secret_env):
            raise _UsageFailure(
                "--oauth-client-secret-env takes the NAME of an environment variable that "
                "holds the secret, not the secret itself. Put it in a variable, e.g. "
                "MY_APP_SECRET, and pass --oauth-client-secret-env MY_APP_SECRET; or set "
                f"{CLIENT_SECRET_ENV}"
            )
        secret = os.environ.get(args.oauth_client_secret_env, "")
        if not secret:
            raise _UsageFailure(
                f"the environment variable {args.oauth_client_secret_env} (from "
                "--oauth-client-secret-env) is not set or is empty"
            )
    elif args.oauth_client_id and os.environ.get(CLIENT_SECRET_ENV):
        secret = os.environ[CLIENT_SECRET_ENV]
    elif args.oauth_client_id and _stored_secret_of(args, store) is not None:
        secret = None  # the one stored with `auth set-client-secret` (the flow reads it)
    elif args.oauth_client_id and sys.stdin is not None and sys.stdin.isatty():
        secret = getpass.getpass(
            f"Client secret of {args.oauth_client_id} (empty for a public client; input is "
            "hidden): "
        ).strip()
    return OAuthOptions(
        client_id=args.oauth_client_id or None,
        client_secret=secret or None,
        client_metadata_url=args.client_metadata_url or None,
        resource=args.resource or None,
        send_resource=not args.disable_resource_parameter,
        scope=args.scope or None,
        callback_port=args.callback_port,
        auth_timeout=args.auth_timeout,
        open_browser=not args.no_browser,
        allow_http=args.allow_http,
        grant=DEVICE_CODE if args.device else AUTHORIZATION_CODE,
    )


def _stored_secret_of(args: argparse.Namespace, store: CredentialStore) -> str | None:
    """The secret `auth set-client-secret` stored for this server and --oauth-client-id."""
    try:
        found = store.get(args.url)
    except (CredentialStoreError, ValueError):
        return None
    if found is None or (found.client or {}).get("client_id") != args.oauth_client_id:
        return None
    if found.kind == "client":
        return found.access_token
    secret = (found.client or {}).get("client_secret")
    return secret if isinstance(secret, str) and secret else None


def _cmd_set_client_secret(args: argparse.Namespace, store: CredentialStore) -> int:
    key = _key(args.url)
    client_id = args.oauth_client_id.strip()
    if not client_id or any(c.isspace() or not c.isprintable() for c in client_id):
        raise _UsageFailure("--oauth-client-id must be a client id without spaces")
    where = store.describe()  # fail on an unusable store before asking for the secret
    example = f"printenv CLIENT_SECRET | {PROG} set-client-secret URL --oauth-client-id ID"
    try:
        secret = _read_secret(
            f"Client secret of {client_id} for {key} (input is hidden): ", sys.stdin, example
        )
    except EOFError:
        raise _UsageFailure("no secret given: nothing was stored") from None
    found = store.get(args.url)
    client = (found.client or {}) if found is not None else {}
    if (
        found is not None
        and found.kind == "oauth"
        and client.get("registration") == "static"
        and client.get("client_id") == client_id
    ):
        # Signed in as that client already: keep the tokens, change the secret they refresh
        # and renew with.
        updated = dict(client)
        updated["client_secret"] = secret
        registrations = updated.get("registrations")
        if isinstance(registrations, dict):
            updated["registrations"] = {
                issuer: (
                    {**r, "client_secret": secret}
                    if isinstance(r, dict) and r.get("client_id") == client_id
                    else r
                )
                for issuer, r in registrations.items()
            }
        store.put(
            args.url,
            Credential(
                kind="oauth",
                access_token=found.access_token,
                refresh_token=found.refresh_token,
                expires_at=found.expires_at,
                client=updated,
                saved_at=found.saved_at,
            ),
        )
        _out(f"stored the secret of the client {client_id} for {key} (its tokens kept)")
    else:
        store.put(
            args.url,
            Credential(
                kind="client",
                access_token=secret,
                client={"registration": "static", "client_id": client_id},
            ),
        )
        _out(f"stored the secret of the client {client_id} for {key}")
        if found is not None and found.kind != "client":
            _out(f"  (it replaces the stored {found.kind} credential)")
    _out(f"  store: {where}")
    _out(f"  secret: {mask_secret(secret)}")
    return 0


def _cmd_login(args: argparse.Namespace, store: CredentialStore) -> int:
    key = _key(args.url)
    where = store.describe()  # fail on an unusable store before the browser
    options = _login_options(args, store)

    import trio

    from ..core.errors import UpstreamError
    from ..shell.net import NetworkOptions, build_client
    from .callback import system_browser
    from .oauth import OAuthSession

    async def browser(url: str) -> bool:
        # On a terminal a console browser may use it: no stdio protection needed here.
        return await system_browser(url, quiet_stdio=False)

    async def sign_in() -> Credential:
        async with build_client(NetworkOptions(ca_file=args.ca_file)) as client:
            session = OAuthSession(
                args.url,
                client,
                options,
                store=store,
                browser=browser,
                notify=_err,
                prompt=_prompt,
            )
            return await session.login()

    try:
        credential = trio.run(sign_in)
    except UpstreamError as exc:
        _err(f"error: {exc.advice()}")
        return 1
    client = credential.client or {}
    how = {
        "dynamic": "registered dynamically",
        "static": "pre-registered",
        "metadata_document": "client ID metadata document",
    }.get(str(client.get("registration")), "client")
    _out(f"signed in to {key}")
    _out(f"  token: {mask_secret(credential.access_token)}")
    if credential.refresh_token:
        _out(f"  refresh token: {mask_secret(credential.refresh_token)}")
    if credential.expires_at is not None:
        _out(f"  expires: {_when(credential.expires_at)}")
    if client.get("scope"):
        _out(f"  scope: {client['scope']}")
    _out(f"  client: {client.get('client_id')} ({how})")
    _out(f"  store: {where}")
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace, CredentialStore], int]] = {
    "set": _cmd_set,
    "show": _cmd_show,
    "list": _cmd_list,
    "delete": _cmd_delete,
    "login": _cmd_login,
    "set-client-secret": _cmd_set_client_secret,
}


# Options whose values are never secrets (an environment variable's name, a URL, a number).
_PLAIN_VALUES = frozenset(
    {
        "--oauth-client-id",
        "--oauth-client-secret-env",
        "--client-metadata-url",
        "--resource",
        "--scope",
        "--callback-port",
        "--auth-timeout",
        "--ca-file",
    }
)


def _mask_arguments(message: str, argv: Sequence[str]) -> str:
    """Mask in ``message`` every argument that could be a secret (an error may repeat one)."""
    candidates: set[str] = set()
    for i, arg in enumerate(argv):
        if arg in _SAFE_WORDS or arg in _STORE_CHOICES:
            continue
        if (i > 0 and argv[i - 1] in _PLAIN_VALUES) or arg.partition("=")[0] in _PLAIN_VALUES:
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
            if args.command == "set-client-secret":
                raise _UsageFailure(
                    "refusing a secret (or anything else) after the URL: on the command line it "
                    "would show in process lists and shell history. Type it at the prompt, or "
                    f"pipe it in: printenv CLIENT_SECRET | {PROG} set-client-secret URL "
                    "--oauth-client-id ID",
                    parser.commands["set-client-secret"],
                )
            if args.command == "set":
                raise _UsageFailure(
                    "refusing a token (or anything else) after the URL: on the command line it "
                    "would show in process lists and shell history. Type it at the prompt, or "
                    f"pipe it in: printenv API_TOKEN | {PROG} set URL",
                    parser.commands["set"],
                )
            secret_hint = (
                "; a client secret is never taken from the command line: use "
                "--oauth-client-secret-env VAR (or MCP_REMOTE_PY_CLIENT_SECRET, or "
                f"`{PROG} set-client-secret URL`), or type it at the prompt"
                if args.command == "login"
                else ""
            )
            raise _UsageFailure(
                f"unexpected argument{'s' if len(extras) > 1 else ''} for '{args.command}' (not "
                f"repeated here, in case one is a secret){secret_hint}",
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
