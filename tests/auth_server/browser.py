"""A headless "browser" for the sign-in tests: it follows the authorization URL's redirects.

The test authorization server approves at once, so following its redirect lands on the
client's loopback callback, as a user's browser would after they clicked "Allow".

In-process: ``HeadlessBrowser`` is the ``browser`` callable of an ``OAuthSession``.
As a program (``BROWSER="python tests/auth_server/browser.py %s"``, which ``webbrowser``
honours): follows the redirects, and appends the URL to ``$HEADLESS_BROWSER_LOG`` if set (one
line per browser opened); ``$HEADLESS_BROWSER_DELAY`` seconds of "reading the page" first.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

MAX_HOPS = 10


def _with_state(url: str, state: str) -> str:
    parts = urlsplit(url)
    query = [(k, state if k == "state" else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _is_callback(url: str) -> bool:
    return urlsplit(url).path == "/callback"


class HeadlessBrowser:
    """Opens authorization URLs by following redirects. ``forge_first`` sends a callback with
    a wrong state (and a made-up code) before the real one; ``forge_only`` sends only that;
    ``hold`` never visits the URL (a user who walks away)."""

    def __init__(
        self, *, forge_first: bool = False, forge_only: bool = False, hold: bool = False
    ) -> None:
        self.opened: list[str] = []
        self.callbacks: list[httpx.Response] = []
        self.forge_first = forge_first
        self.forge_only = forge_only
        self.hold = hold

    async def __call__(self, url: str) -> bool:
        self.opened.append(url)
        if self.hold:
            return True
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(MAX_HOPS):
                if _is_callback(url):
                    if self.forge_first or self.forge_only:
                        forged = _with_state(url, "forged-state").replace("code=", "code=forged")
                        self.callbacks.append(await http.get(forged))
                        if self.forge_only:
                            return True
                    self.callbacks.append(await http.get(url))
                    return True
                response = await http.get(url)
                if not response.is_redirect:
                    raise AssertionError(f"the sign-in stopped at {response.status_code}: {url}")
                url = str(response.url.join(response.headers["location"]))
        raise AssertionError("too many redirects")


def program_env(tmp_path: Path) -> dict[str, str]:
    """The environment for a relay or ``auth login`` whose browser is this program: a file
    store under ``tmp_path``, and a log of every browser opened."""
    script = Path(__file__).resolve()
    return {
        "MCP_REMOTE_PY_CONFIG_DIR": str(tmp_path / "config"),
        "MCP_REMOTE_PY_CREDENTIAL_STORE": "file",
        "BROWSER": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %s",
        "HEADLESS_BROWSER_LOG": str(tmp_path / "browser.log"),
    }


def browsers_opened(env: dict[str, str]) -> int:
    """How many times the program of ``program_env`` was opened."""
    log = Path(env["HEADLESS_BROWSER_LOG"])
    return len(log.read_text().splitlines()) if log.exists() else 0


def main(argv: list[str]) -> int:
    url = argv[1]
    log = os.environ.get("HEADLESS_BROWSER_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(url + "\n")
    time.sleep(float(os.environ.get("HEADLESS_BROWSER_DELAY", "0")))
    with httpx.Client(timeout=10) as http:
        for _ in range(MAX_HOPS):
            response = http.get(url)
            if _is_callback(url):
                return 0 if response.status_code == 200 else 1
            if not response.is_redirect:
                return 1
            url = str(response.url.join(response.headers["location"]))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
