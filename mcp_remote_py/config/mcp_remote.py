"""Translating the Node ``mcp-remote``'s arguments into mcp-remote-py's.

The doctor suggests the translated entry in place of an ``npx mcp-remote …`` one; the notes say
what could not be carried over, and a literal token becomes a ``${VAR}`` reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .entry import AUTH_SCHEME, literal_secrets

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
                    scheme = AUTH_SCHEME.match(given.partition(":")[2].strip())
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
