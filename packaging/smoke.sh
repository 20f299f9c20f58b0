#!/usr/bin/env bash
# End-to-end smoke test of a built executable, against the SDK test peer on loopback:
#
#   packaging/smoke.sh dist/mcp-remote-py                      # the one-file build
#   packaging/smoke.sh dist/mcp-remote-py-onedir/mcp-remote-py # the one-folder build
#
# Needs the test extra in the Python that runs it (pip install -e '.[test]'; $PYTHON, default
# `python`), no Node. Under a minute. Runs on Linux, macOS and Windows (Git Bash).
#
# What it covers, with MCP_REMOTE_PY_BIN=BINARY for the integration harness:
#   - BINARY --version prints the version of mcp_remote_py/_version.py; --help works
#   - auth set / show / list / delete: a token through the OS keyring (the bundled keyring
#     backends) where the OS has one, else the 0600 file
#   - initialize and tools/list + tools/call through the SDK's own client, against both a
#     Streamable HTTP (SSE answers) and a legacy HTTP+SSE server; a server request (sampling)
#   - http-first falling back to legacy SSE (transport negotiation)
#   - usage errors: exit status 2 and a message, nothing on stdout
#   - stdin EOF: the session is DELETEd, exit 0; SIGTERM (not on Windows): answers, exit 0
#   - TLS from inside the build: an unknown CA is refused with advice, --ca-file trusts it
#   - tests/packaging: no process and no _MEI* folder left behind, after stdin EOF, SIGTERM,
#     and a killed client (with and without its pipes)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 1 ]; then
    echo "usage: packaging/smoke.sh BINARY" >&2
    exit 2
fi
if [ ! -f "$1" ]; then
    echo "smoke: no such file: $1 (build it with: python packaging/build.py)" >&2
    exit 2
fi
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
if command -v cygpath >/dev/null 2>&1; then
    BIN="$(cygpath -m "$BIN")"  # Git Bash: C:/... rather than /c/..., for native Windows programs
fi
PYTHON="${PYTHON:-python}"
case "$(uname -s)" in
    MINGW* | MSYS* | CYGWIN*) WINDOWS=1 ;;
    *) WINDOWS=0 ;;
esac

step() {
    echo "--- smoke: $1" >&2
}

step "$BIN --version"
VERSION="$("$PYTHON" -c 'from mcp_remote_py._version import __version__; print(__version__)')"
SAID="$("$BIN" --version | tr -d '\r')"
if [ "$SAID" != "mcp-remote-py $VERSION" ]; then
    echo "smoke: --version said '$SAID', expected 'mcp-remote-py $VERSION'" >&2
    exit 1
fi
echo "$SAID"

step "$BIN --help"
HELP="$("$BIN" --help)"
grep -q "^usage: mcp-remote-py" <<<"$HELP"

step "auth set / show / list / delete"
# The OS keyring where there is one (Keychain, Credential Manager, Secret Service): the bundled
# keyring backends at work; else the 0600 file, with a warning. Force one with
# MCP_REMOTE_PY_CREDENTIAL_STORE=keyring|file. A throwaway server name and config folder.
AUTH_DIR="$(mktemp -d)"
if command -v cygpath >/dev/null 2>&1; then
    AUTH_DIR="$(cygpath -m "$AUTH_DIR")"
fi
SERVER="https://smoke-$$-$RANDOM.example.invalid/mcp"
auth() {
    MCP_REMOTE_PY_CONFIG_DIR="$AUTH_DIR" "$BIN" auth "$@"
}
cleanup() {
    auth delete "$SERVER" >/dev/null 2>&1 || true
    rm -rf "$AUTH_DIR"
}
trap cleanup EXIT
printf 'smoke-token-%s\n' "$RANDOM$RANDOM" | auth set "$SERVER" >/dev/null
SHOWN="$(auth show "$SERVER" | tr -d '\r')"
grep -q "kind: bearer" <<<"$SHOWN"
grep "store:" <<<"$SHOWN"
auth list | grep -q "smoke-$$-"
auth delete "$SERVER" >/dev/null
if auth show "$SERVER" >/dev/null 2>&1; then
    echo "smoke: auth show still finds the credential after auth delete" >&2
    exit 1
fi

# --- To add when it exists (it must pass from inside the build): ------------------------------
step "doctor --selftest"   # the relay end to end on both transports, inside the build
"$BIN" doctor --selftest
step "doctor (local checks)"
"$BIN" doctor --json >/dev/null || true  # findings are the machine's; it must not crash
# -------------------------------------------------------------------------------------------

TESTS=(
    "tests/integration/test_sdk_relay.py::test_initialize_reports_the_servers_identity[streamable-sse]"
    "tests/integration/test_sdk_relay.py::test_initialize_reports_the_servers_identity[legacy-sse]"
    "tests/integration/test_sdk_relay.py::test_tools_list_and_call[streamable-sse]"
    "tests/integration/test_sdk_relay.py::test_tools_list_and_call[legacy-sse]"
    "tests/integration/test_sdk_relay.py::test_server_requests_are_answered_by_the_client[streamable-sse]"
    "tests/integration/test_bad_input_and_exit.py::test_http_first_falls_back_to_legacy_sse"
    "tests/integration/test_bad_input_and_exit.py::test_usage_errors_exit_2_and_say_what_is_wrong"
    "tests/integration/test_bad_input_and_exit.py::test_stdin_eof_deletes_the_session_and_exits_0"
    "tests/integration/test_tls.py::test_an_unknown_ca_is_refused_with_advice"
    "tests/integration/test_tls.py::test_ca_file_makes_a_private_ca_trusted"
    "tests/packaging"
)
if [ "$WINDOWS" = 0 ]; then
    TESTS+=("tests/integration/test_bad_input_and_exit.py::test_sigterm_answers_what_is_in_flight_and_exits_0")
fi

step "integration and packaging tests with MCP_REMOTE_PY_BIN=$BIN"
MCP_REMOTE_PY_BIN="$BIN" "$PYTHON" -m pytest -q -rfEsxX -p no:cacheprovider "${TESTS[@]}"

echo "--- smoke: all passed for $BIN" >&2
