"""The challenges of a ``WWW-Authenticate`` header: what a 401 or 403 asks the client for.

RFC 9110 §11.6.1 gives the syntax; RFC 6750 §3 the Bearer parameters (``error``, ``scope``) and
RFC 9728 §5.1 ``resource_metadata``, where a server's authorization server is described.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpx

__all__ = ["Challenge", "bearer_challenge", "parse_www_authenticate"]

# RFC 9110 §11.6.1: challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ].
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME = re.compile(_TOKEN)
_PARAM = re.compile(rf'({_TOKEN})[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|{_TOKEN})')
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a scheme (lower-case) and its parameters (names
    lower-case, values unquoted)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def error(self) -> str | None:
        return self.params.get("error")

    @property
    def error_description(self) -> str | None:
        return self.params.get("error_description")

    @property
    def scope(self) -> str | None:
        """RFC 6750 §3 ``scope``, whitespace normalised; None when absent or empty."""
        value = " ".join(self.params.get("scope", "").split())
        return value or None

    @property
    def resource_metadata(self) -> str | None:
        """RFC 9728 §5.1 ``resource_metadata``."""
        return self.params.get("resource_metadata") or None


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _parse_challenges(text: str) -> list[Challenge]:
    found: list[Challenge] = []
    end = len(text)
    pos = _skip(text, 0, " \t,")
    while pos < end:
        match = _SCHEME.match(text, pos)
        if match is None:
            break  # not a challenge: ignore the rest rather than guess
        scheme = match.group(0).lower()
        pos = match.end()
        params: dict[str, str] = {}
        token68: str | None = None
        after_space = _skip(text, pos, " \t")
        if after_space > pos and after_space < end and text[after_space] != ",":
            pos = after_space
            param = _PARAM.match(text, pos)
            if param is None:
                blob = _TOKEN68.match(text, pos)
                if blob is not None:
                    token68 = blob.group(0)
                    pos = blob.end()
            while param is not None:
                value = param.group(2)
                if value.startswith('"'):
                    value = _ESCAPE.sub(r"\1", value[1:-1])
                params.setdefault(param.group(1).lower(), value)
                pos = _skip(text, param.end(), " \t")
                if pos >= end or text[pos] != ",":
                    break
                pos = _skip(text, pos, " \t,")
                param = _PARAM.match(text, pos)  # another parameter, or the next challenge
        found.append(Challenge(scheme, params, token68))
        pos = _skip(text, pos, " \t,")
    return found


def parse_www_authenticate(values: Iterable[str]) -> list[Challenge]:
    """Every challenge in the given ``WWW-Authenticate`` header values, in order.

    Handles several challenges in one value (``Basic realm="x", Bearer scope="a"``), quoted
    strings with escapes and commas, token68 values, and stops quietly at garbage.
    """
    challenges: list[Challenge] = []
    for value in values:
        challenges.extend(_parse_challenges(value))
    return challenges


def bearer_challenge(headers: httpx.Headers | Mapping[str, str]) -> Challenge | None:
    """The ``Bearer`` challenge of a response's headers, or None."""
    if isinstance(headers, httpx.Headers):
        values = headers.get_list("www-authenticate")
    else:
        values = [v for k, v in headers.items() if k.lower() == "www-authenticate"]
    for challenge in parse_www_authenticate(values):
        if challenge.scheme == "bearer":
            return challenge
    return None
