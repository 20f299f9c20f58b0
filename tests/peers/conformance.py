"""Test peer: the MCP conformance suite (``@modelcontextprotocol/conformance``, Node), run against
mcp-remote-py as the client under test (``tests/peers/conformance_client.py``).

Two releases are installed from ``package-lock.json`` (``npm ci``): the 0.2 line
(``node_modules/@modelcontextprotocol/conformance``, pinned to ``0.2.0-alpha.12``, which knows
the 2026-07-28 revision) and the 0.1 line under an npm alias
(``node_modules/conformance-0-1`` = ``@modelcontextprotocol/conformance@0.1.16``), whose
scenarios of the same names are in places different (its 2025-03-26 back-compat server names an
issuer with a path). Plain helpers, no pytest import::

    from tests.peers.conformance import LINES, conformance_available, run_scenario

    result = run_scenario(LINES["0.2"], "auth/iss-supported", None, tmp_path)
    result.passed        # the suite's verdict (its exit status)
    result.failures()    # "check-id: message" for each FAILURE or WARNING check
    result.secrets()     # tokens, codes and client secrets its servers handed out

Each run gets its own directory: ``home/`` for the relay (credential store, locks, logs: see
``conformance_client.py``) and ``out/`` for the suite's ``checks.json``. Both releases bundle an
``import { globSync } from "fs"`` that Node 20 lacks: ``conformance_node20.mjs`` supplies it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .everything import node_bin

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE20_SHIM = Path(__file__).with_name("conformance_node20.mjs")
CLIENT_MODULE = "tests.peers.conformance_client"
# What the suite gives the client (its own default); the run as a whole gets a little more.
CLIENT_TIMEOUT_MS = 30_000
RUN_TIMEOUT = 60.0
# Keys whose values the suite's servers hand out as secrets, wherever they appear in checks.json.
SECRET_KEYS = {"access_token", "refresh_token", "client_secret", "code", "id_token"}
_SECRET_IN_URL = re.compile(rf"[?&](?:{'|'.join(sorted(SECRET_KEYS))})=([^&#\s\"]+)")
_CONTEXT_LINE = re.compile(r"^With context: (\{.*\})$", re.MULTILINE)


@dataclass(frozen=True)
class Line:
    """One installed release of the suite."""

    name: str  # "0.2", "0.1"
    directory: Path  # the package directory under node_modules

    @property
    def entry(self) -> Path:
        return self.directory / "dist" / "index.js"

    def version(self) -> str | None:
        try:
            manifest = json.loads((self.directory / "package.json").read_text())
        except (OSError, ValueError):
            return None
        version = manifest.get("version")
        return version if isinstance(version, str) else None


LINES = {
    "0.2": Line("0.2", REPO_ROOT / "node_modules" / "@modelcontextprotocol" / "conformance"),
    "0.1": Line("0.1", REPO_ROOT / "node_modules" / "conformance-0-1"),
}


def conformance_available() -> bool:
    """True when node and both releases of the suite are installed."""
    return node_bin() is not None and all(line.version() for line in LINES.values())


def node_command(line: Line, *args: str) -> list[str]:
    node = node_bin()
    assert node is not None
    return [node, "--import", str(NODE20_SHIM), str(line.entry), *args]


def list_client_scenarios(line: Line) -> dict[str, str]:
    """``conformance list --client``: scenario name → its bracketed versions, e.g.
    ``{"auth/iss-supported": "2026-07-28", "auth/dpop": "extension", ...}``."""
    listing = subprocess.run(
        node_command(line, "list", "--client"),
        capture_output=True,
        text=True,
        check=True,
        timeout=RUN_TIMEOUT,
        cwd=REPO_ROOT,
    ).stdout
    found: dict[str, str] = {}
    for match in re.finditer(r"^\s+- (\S+) \[([^\]]*)\]", listing, re.MULTILINE):
        found[match.group(1)] = match.group(2)
    return found


def client_command() -> str:
    """The command the suite runs (it appends the server URL). The suite splits it on spaces and
    runs it through a shell, so each part is quoted and must not contain a space."""
    parts = [sys.executable, "-m", CLIENT_MODULE]
    assert not any(" " in part for part in parts), parts
    return " ".join(shlex.quote(part) for part in parts)


@dataclass
class Result:
    """What one scenario run left behind."""

    scenario: str
    returncode: int
    output: str  # the suite's stdout and stderr
    checks: list[dict[str, Any]]
    home: Path
    seconds: float
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    def failures(self) -> list[str]:
        return [
            f"{check.get('id')}: {check.get('errorMessage') or check.get('description')}"
            for check in self.checks
            if check.get("status") in ("FAILURE", "WARNING")
        ]

    def secrets(self) -> set[str]:
        """Every token, code and client secret the scenario's servers handed out or gave the
        client in its context."""
        found: set[str] = set()
        for check in self.checks:
            found.update(_secret_values(check.get("details")))
        found.update(_secret_values(self.context))
        return {secret for secret in found if len(secret) >= 6}

    def relay_text(self) -> dict[str, str]:
        """The relay's stderr, its log file and its command line, by name."""
        texts = {}
        for name in ("relay-stderr.txt", "relay.log", "relay-argv.json"):
            path = self.home / name
            texts[name] = (
                path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
            )
        return texts

    def report(self) -> str:
        stderr = self.relay_text()["relay-stderr.txt"]
        failed = "\n  ".join(self.failures()) or "(no failing check)"
        return (
            f"{self.scenario}: the suite exited {self.returncode} after {self.seconds:.1f} s\n"
            f"failing checks:\n  {failed}\n"
            f"relay stderr (last 3000 characters):\n{stderr[-3000:]}\n"
            f"suite output (last 3000 characters):\n{self.output[-3000:]}"
        )


def _secret_values(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in SECRET_KEYS and isinstance(inner, str):
                yield inner
            else:
                yield from _secret_values(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _secret_values(inner)
    elif isinstance(value, str):  # a redirect's Location, or the body that repeats it
        for match in _SECRET_IN_URL.finditer(value):
            yield unquote(match.group(1))


def run_scenario(line: Line, scenario: str, spec_version: str | None, directory: Path) -> Result:
    """Run one client scenario of ``line`` against the client under test, at ``spec_version``
    (None: the scenario's own default), with a fresh home under ``directory``."""
    import time

    home = directory / "home"
    out = directory / "out"
    home.mkdir(parents=True)
    args = [
        "client",
        "--command",
        client_command(),
        "--scenario",
        scenario,
        "--timeout",
        str(CLIENT_TIMEOUT_MS),
        "-o",
        str(out),
    ]
    if spec_version is not None:
        args += ["--spec-version", spec_version]
    env = {**os.environ, "CONFORMANCE_CLIENT_HOME": str(home)}
    started = time.monotonic()
    try:
        completed = subprocess.run(
            node_command(line, *args),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            cwd=REPO_ROOT,
            env=env,
        )
        returncode, output = completed.returncode, completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = -1
        output = f"the suite did not finish within {RUN_TIMEOUT:g} s\n{exc.stdout}{exc.stderr}"
    seconds = time.monotonic() - started
    checks: list[dict[str, Any]] = []
    for path in sorted(out.glob("**/checks.json")):
        checks += json.loads(path.read_text())
    match = _CONTEXT_LINE.search(output)
    context = json.loads(match.group(1)) if match else {}
    return Result(scenario, returncode, output, checks, home, seconds, context)
