"""Translating the Node ``mcp-remote``'s arguments into mcp-remote-py's.

The doctor suggests the translated entry in place of an ``npx mcp-remote …`` one; the notes say
what could not be carried over, and a literal token becomes a ``${VAR}`` reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..options import translate_mcp_remote as shared_translation
from .entry import AUTH_SCHEME, literal_secrets


def translate_mcp_remote(args: Sequence[str], name: str = "") -> tuple[list[str], list[str]]:
    """mcp-remote's arguments as mcp-remote-py's, and notes on what could not be carried over.

    The table of what each of mcp-remote's options becomes is ``options.translate_mcp_remote``'s,
    built from the relay's own parser, so an option the relay learns is carried over from then
    on. What is added here: a literal credential in a header is replaced by a ``${VAR}``
    reference (the translation is printed, and must not repeat the secret), and the notes about
    a missing URL or a URL that carries a credential.
    """
    variable = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "MCP"

    def header(given: str) -> tuple[str, str | None]:
        if not literal_secrets("", [given]):
            return given, None
        header_name = given.partition(":")[0].strip()
        scheme = AUTH_SCHEME.match(given.partition(":")[2].strip())
        prefix = scheme.group(0) if scheme else ""
        return f"{header_name}: {prefix}${{{variable}_TOKEN}}", (
            f"the {header_name} header held a literal token: it now reads "
            f"${{{variable}_TOKEN}}; put the token in the entry's env block as "
            f"{variable}_TOKEN, or better store it with `mcp-remote-py auth set URL` "
            "and drop the header"
        )

    url, out, notes = shared_translation(args, header)
    if url is None:
        notes.append("no server URL found in the mcp-remote arguments")
        return out, notes
    if literal_secrets(url, []):
        notes.append(
            "the URL carries a credential (shown masked here): it shows in process lists; store "
            "the token with `mcp-remote-py auth set URL` if the server accepts it as a bearer token"
        )
    return [url, *out], notes
