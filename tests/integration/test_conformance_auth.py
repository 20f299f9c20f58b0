"""The MCP conformance suite's OAuth client scenarios, with mcp-remote-py as the client.

Each scenario of ``@modelcontextprotocol/conformance`` starts an authorization server and a
protected MCP server, then runs ``tests/peers/conformance_client.py``: the SDK's ``Client``
driving the relay over stdio, the browser step done by ``tests/auth_server/browser.py``. The
suite's verdict (its exit status) is the test's; the relay's stderr, log file and command line
must hold none of the tokens, codes and client secrets the scenario handed out.

The table: every non-extension ``auth/`` client scenario of the 0.2 line (0.2.0-alpha.12) at its
default wire (2025-11-25 for the scenarios that belong to both revisions, 2026-07-28 for the
ones new in it), those of both revisions once more at the 2026-07-28 wire (the suite's README:
"passing it on one wire says nothing about the other"), and every one of the 0.1 line
(0.1.16), whose scenarios of the same names differ in places. Scenarios mcp-remote-py does not
pass yet are ``xfail(strict=True)`` naming the issue-15 item that will fix them, so the table
is honest and a fix shows up as an XPASS that fails until its mark goes.

Extension scenarios (client credentials, DPoP, enterprise-managed authorization, ...) are not
run: mcp-remote-py implements none of them.

Speed: each run costs about 3 s, nearly all of it process start-up (node, the SDK client, the
relay, the browser); the module runs them two at a time, in one batch before the first test.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers.conformance import (
    LINES,
    Result,
    conformance_available,
    list_client_scenarios,
    run_scenario,
)

# The first test waits for the whole batch (about 100 s on two cores).
pytestmark = pytest.mark.timeout(600)

WORKERS = 2
MODERN = "2026-07-28"
BOTH = "2025-11-25,2026-07-28"

# conformance list --client (auth/, no extensions), as each release lists them.
SCENARIOS = {
    "0.2": {
        "auth/metadata-default": BOTH,
        "auth/metadata-var1": BOTH,
        "auth/metadata-var2": BOTH,
        "auth/metadata-var3": BOTH,
        "auth/basic-cimd": BOTH,
        "auth/scope-from-www-authenticate": BOTH,
        "auth/scope-from-scopes-supported": BOTH,
        "auth/scope-omitted-when-undefined": BOTH,
        "auth/scope-step-up": BOTH,
        "auth/scope-retry-limit": BOTH,
        "auth/token-endpoint-auth-basic": "2025-06-18,2025-11-25,2026-07-28",
        "auth/token-endpoint-auth-post": "2025-06-18,2025-11-25,2026-07-28",
        "auth/token-endpoint-auth-none": "2025-06-18,2025-11-25,2026-07-28",
        "auth/pre-registration": BOTH,
        "auth/2025-03-26-oauth-metadata-backcompat": "2025-03-26",
        "auth/2025-03-26-oauth-endpoint-fallback": "2025-03-26",
        "auth/resource-mismatch": MODERN,
        "auth/offline-access-scope": MODERN,
        "auth/offline-access-not-supported": MODERN,
        "auth/authorization-server-migration": MODERN,
        "auth/iss-supported": MODERN,
        "auth/iss-not-advertised": MODERN,
        "auth/iss-supported-missing": MODERN,
        "auth/iss-wrong-issuer": MODERN,
        "auth/iss-unexpected": MODERN,
        "auth/iss-normalized": MODERN,
        "auth/metadata-issuer-mismatch": MODERN,
    },
    "0.1": {
        "auth/metadata-default": "2025-11-25",
        "auth/metadata-var1": "2025-11-25",
        "auth/metadata-var2": "2025-11-25",
        "auth/metadata-var3": "2025-11-25",
        "auth/basic-cimd": "2025-11-25",
        "auth/scope-from-www-authenticate": "2025-11-25",
        "auth/scope-from-scopes-supported": "2025-11-25",
        "auth/scope-omitted-when-undefined": "2025-11-25",
        "auth/scope-step-up": "2025-11-25",
        "auth/scope-retry-limit": "2025-11-25",
        "auth/token-endpoint-auth-basic": "2025-06-18,2025-11-25",
        "auth/token-endpoint-auth-post": "2025-06-18,2025-11-25",
        "auth/token-endpoint-auth-none": "2025-06-18,2025-11-25",
        "auth/pre-registration": "2025-11-25",
        "auth/2025-03-26-oauth-metadata-backcompat": "2025-03-26",
        "auth/2025-03-26-oauth-endpoint-fallback": "2025-03-26",
        "auth/resource-mismatch": "draft",
        "auth/offline-access-scope": "draft",
        "auth/offline-access-not-supported": "draft",
    },
}


@dataclass(frozen=True)
class Case:
    line: str  # "0.2", "0.1"
    scenario: str
    wire: str | None  # --spec-version; None: the scenario's default

    @property
    def id(self) -> str:
        return f"{self.line}:{self.scenario}" + (f"@{self.wire}" if self.wire else "")


def _cases() -> list[Case]:
    cases = []
    for line, scenarios in SCENARIOS.items():
        for scenario, versions in scenarios.items():
            cases.append(Case(line, scenario, None))
            if MODERN in versions and versions != MODERN:
                cases.append(Case(line, scenario, MODERN))
    return cases


CASES = _cases()

# Known failures: the case's id (e.g. "0.2:auth/iss-normalized@2026-07-28") → the issue-15 item
# that will fix it, as the xfail reason. Empty: every scenario passes. Issue 15's first slice
# emptied it (item 1, RFC 9207 iss; 2, registrations bound to their issuer; 3, application_type;
# 4, the 2025-03-26 root metadata); tests/unit/test_oauth_2026.py and
# tests/integration/test_oauth_2026.py test each fix on its own.
EXPECTED_FAILURES: dict[str, str] = {}

# A scenario the relay must refuse: what its stderr says about why.
REFUSALS = {
    "auth/resource-mismatch": "RFC 9728",
    "auth/metadata-issuer-mismatch": "RFC 8414",
    "auth/iss-supported-missing": "RFC 9207",
    "auth/iss-wrong-issuer": "RFC 9207",
    "auth/iss-unexpected": "RFC 9207",
    "auth/iss-normalized": "RFC 9207",
}


def _param(case: Case, *, verdict: bool) -> object:
    reason = EXPECTED_FAILURES.get(case.id) if verdict else None
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[Case, Result]:
    """Every selected case, run once, two at a time."""
    if not conformance_available():
        pytest.skip("node or @modelcontextprotocol/conformance not installed (run `npm ci`)")
    wanted: list[Case] = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("case") if callspec is not None else None
        if isinstance(case, Case) and case not in wanted:
            wanted.append(case)

    def run(case: Case) -> Result:
        directory = tmp_path_factory.mktemp(case.id.replace("/", "_").replace(":", "_"))
        return run_scenario(LINES[case.line], case.scenario, case.wire, directory)

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(wanted, pool.map(run, wanted), strict=True))


@pytest.mark.parametrize("case", [_param(c, verdict=True) for c in CASES])
def test_the_suite_passes_the_scenario(case: Case, results: dict[Case, Result]) -> None:
    result = results[case]
    assert result.passed, result.report()
    why = REFUSALS.get(case.scenario)
    if why is not None:
        stderr = result.relay_text()["relay-stderr.txt"]
        assert why in stderr, f"the refusal does not say why ({why}):\n{stderr[-3000:]}"


@pytest.mark.parametrize("case", [_param(c, verdict=False) for c in CASES])
def test_no_secret_reaches_stderr_the_log_or_argv(case: Case, results: dict[Case, Result]) -> None:
    result = results[case]
    texts = result.relay_text()
    assert texts["relay-argv.json"], "the client did not start the relay"
    assert texts["relay.log"], "the relay wrote no log file"
    secrets = result.secrets()
    if any(c.get("id") == "token-request" and c.get("status") == "SUCCESS" for c in result.checks):
        assert secrets, "a token was requested but no secret was found in checks.json"
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{name} holds a secret the scenario handed out"


@pytest.mark.parametrize("line", sorted(LINES))
def test_the_table_lists_every_auth_scenario(line: str, tmp_path: Path) -> None:
    """A newer release of the suite with a new auth scenario fails here until the table has it."""
    if not conformance_available():
        pytest.skip("node or @modelcontextprotocol/conformance not installed (run `npm ci`)")
    listed = {
        name: versions
        for name, versions in list_client_scenarios(LINES[line]).items()
        if name.startswith("auth/") and versions != "extension"
    }
    assert listed == SCENARIOS[line]
