"""``mcp-remote-py auth``, run as a user runs it: a subprocess, a token on a pipe or a terminal.

``auth`` is not wired into ``mcp_remote_py/cli.py`` yet, so the commands run through
``mcp_remote_py.auth.cli.main`` directly (``AUTH`` below). Every run gets its own config directory
(``MCP_REMOTE_PY_CONFIG_DIR``) and, unless a test says otherwise, the file store, so no test ever
writes to this machine's real keyring. Every run is checked for the full token in its output.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_remote_py.auth import cli as auth_cli
from mcp_remote_py.auth import store as store_module
from mcp_remote_py.auth.store import (
    CONFIG_DIR_ENV,
    STORE_KIND_ENV,
    CredentialStore,
    find_os_keyring,
)

REPO = Path(__file__).resolve().parents[2]
AUTH = "import sys; from mcp_remote_py.auth.cli import main; sys.exit(main(sys.argv[1:]))"
TOKEN = "sk_test_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
URL = "https://MCP.example.com/mcp/"
KEY = "https://mcp.example.com:443/mcp"
TIMEOUT = 60


def auth(
    config: Path,
    *args: str,
    stdin: str | None = "",
    store: str | None = "file",
    secrets: tuple[str, ...] = (TOKEN,),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``mcp-remote-py auth ARGS`` with ``stdin`` piped in; fail if a secret is printed."""
    environment = {**os.environ, CONFIG_DIR_ENV: str(config), **(env or {})}
    environment.pop(STORE_KIND_ENV, None)
    if store is not None:
        environment[STORE_KIND_ENV] = store
    result = subprocess.run(
        [sys.executable, "-c", AUTH, *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=environment,
        cwd=REPO,
        timeout=TIMEOUT,
    )
    for secret in secrets:
        assert secret not in result.stdout, result.stdout
        assert secret not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "config"


def stored(config: Path) -> dict[str, dict[str, object]]:
    path = config / "credentials.json"
    if not path.exists():
        return {}
    credentials: dict[str, dict[str, object]] = json.loads(path.read_text())["credentials"]
    return credentials


def os_keyring_present() -> bool:
    return find_os_keyring() is not None


# --------------------------------------------------------------------------- the happy path


def test_set_show_list_delete(config: Path) -> None:
    result = auth(config, "set", URL, stdin=TOKEN + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"stored a bearer token for {KEY}",
        f"  store: file: {config / 'credentials.json'} (chosen with {STORE_KIND_ENV}=file)",
        "  token: sk_t…6b5c",
    ]
    assert stored(config)[KEY]["access_token"] == TOKEN
    if sys.platform != "win32":
        assert os.stat(config / "credentials.json").st_mode & 0o777 == 0o600

    result = auth(config, "show", "https://mcp.example.com:443/mcp")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == KEY
    assert "  kind: bearer" in lines
    assert "  token: sk_t…6b5c" in lines
    assert any(line.startswith("  saved: ") for line in lines)
    assert any(line.startswith("  store: file: ") for line in lines)

    result = auth(config, "list")
    assert (result.returncode, result.stdout) == (0, KEY + "\n")

    result = auth(config, "delete", URL)
    assert result.returncode == 0, result.stderr
    assert f"deleted the credential for {KEY}" in result.stdout
    assert stored(config) == {}

    result = auth(config, "show", URL)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"no credential stored for {KEY}" in result.stderr
    assert f"mcp-remote-py auth set {KEY}" in result.stderr

    result = auth(config, "delete", URL)
    assert result.returncode == 1
    assert "nothing was stored" in result.stderr

    result = auth(config, "list")
    assert (result.returncode, result.stdout) == (0, "")
    assert "no credentials stored" in result.stderr


def test_list_shows_every_key_and_no_secret(config: Path) -> None:
    others = ("tok-second-0123456789", "tok-third-0123456789")
    auth(config, "set", URL, stdin=TOKEN)
    auth(config, "set", "http://localhost:3001/mcp", stdin=others[0] + "\n", secrets=others)
    auth(config, "set", "https://mcp.example.com/sse", stdin=others[1] + "\n", secrets=others)
    result = auth(config, "list", secrets=(TOKEN, *others))
    assert result.stdout.splitlines() == [
        "http://localhost:3001/mcp",
        "https://mcp.example.com:443/mcp",
        "https://mcp.example.com:443/sse",
    ]


def test_set_replaces_and_strips_a_bearer_prefix(config: Path) -> None:
    auth(config, "set", URL, stdin="old-token-0123456789\n", secrets=("old-token-0123456789",))
    result = auth(config, "set", URL, stdin=f"  Bearer {TOKEN}  \n")
    assert result.returncode == 0, result.stderr
    assert stored(config)[KEY]["access_token"] == TOKEN


def test_credential_store_option_before_or_after_the_command(config: Path) -> None:
    result = auth(config, "--credential-store", "file", "set", URL, stdin=TOKEN, store=None)
    assert result.returncode == 0, result.stderr
    assert "(chosen with --credential-store file)" in result.stdout
    result = auth(config, "list", "--credential-store", "file", store=None)
    assert result.stdout == KEY + "\n"


@pytest.mark.parametrize("command", ["set", "show", "list", "delete"])
def test_help_has_an_example(config: Path, command: str) -> None:
    result = auth(config, command, "--help")
    assert result.returncode == 0
    assert "example" in result.stdout
    assert "--credential-store" in result.stdout
    top = auth(config, "--help")
    assert top.returncode == 0
    assert "examples:" in top.stdout
    assert CONFIG_DIR_ENV in top.stdout


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "argv",
    [
        ["set", URL, TOKEN],
        ["set", "--token", TOKEN, URL],
        ["set", f"--token={TOKEN}", URL],
        ["set", URL, "--", TOKEN],
    ],
)
def test_a_token_on_the_command_line_is_refused(config: Path, argv: list[str]) -> None:
    result = auth(config, *argv, stdin=TOKEN + "\n")
    assert result.returncode == 2
    assert "refusing a token" in result.stderr
    assert "process lists" in result.stderr
    assert "usage: mcp-remote-py auth set" in result.stderr
    assert stored(config) == {}


def test_a_token_given_instead_of_the_url_is_not_repeated(config: Path) -> None:
    result = auth(config, "set", TOKEN, stdin=TOKEN)
    assert result.returncode == 2
    assert "not an http:// or https:// URL" in result.stderr
    assert "sk_t…6b5c" in result.stderr
    assert stored(config) == {}
    result = auth(config, "show", URL, "--credential-store", TOKEN)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.parametrize("stdin", ["", "\n", "   \n", "Bearer \n"])
def test_an_empty_token_is_an_error(config: Path, stdin: str) -> None:
    result = auth(config, "set", URL, stdin=stdin)
    assert result.returncode == 2
    assert "empty token" in result.stderr
    assert stored(config) == {}


def test_a_token_with_spaces_is_refused(config: Path) -> None:
    result = auth(config, "set", URL, stdin=f"{TOKEN} {TOKEN}\n")
    assert result.returncode == 2
    assert "spaces or control characters" in result.stderr
    assert stored(config) == {}


def test_a_token_with_non_ascii_characters_is_refused(config: Path) -> None:
    result = auth(config, "set", URL, stdin=f"{TOKEN}\u2013x\n")
    assert result.returncode == 2
    assert "non-ASCII characters" in result.stderr
    assert TOKEN not in result.stderr
    assert stored(config) == {}


def test_only_the_first_line_of_stdin_is_the_token(config: Path) -> None:
    result = auth(config, "set", URL, stdin=f"{TOKEN}\nsecond line\n")
    assert result.returncode == 0, result.stderr
    assert stored(config)[KEY]["access_token"] == TOKEN


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["sett", URL], "invalid choice: 'sett'"),
        (["show"], "required: URL"),
        (["show", "ftp://mcp.example.com/mcp"], "not an http:// or https:// URL"),
        (["list", "extra-argument-here"], "unexpected argument for 'list'"),
        (["delete", URL, "extra-argument-here"], "unexpected argument for 'delete'"),
    ],
)
def test_usage_errors_exit_2(config: Path, argv: list[str], message: str) -> None:
    result = auth(config, *argv)
    assert result.returncode == 2
    assert message in result.stderr
    assert "usage:" in result.stderr or "e.g. https://" in result.stderr
    assert "extra-argument-here" not in result.stderr


def test_a_damaged_file_is_a_clear_error_not_a_traceback(config: Path) -> None:
    auth(config, "set", URL, stdin=TOKEN)
    path = config / "credentials.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # cut in the middle of the token
    for argv in (["show", URL], ["list"], ["delete", URL], ["set", URL]):
        result = auth(config, *argv, stdin="new-token-0123456789", secrets=(TOKEN, TOKEN[:20]))
        assert result.returncode == 1, argv
        assert str(path) in result.stderr
        assert "damaged" in result.stderr
        assert "auth set" in result.stderr
    assert path.read_text() == text[: len(text) // 2]


# --------------------------------------------------------------------------- the store chosen


@pytest.mark.skipif(os_keyring_present(), reason="this machine has an OS keyring")
def test_keyring_without_a_keyring_says_how_to_get_one(config: Path) -> None:
    result = auth(config, "set", URL, "--credential-store", "keyring", stdin=TOKEN, store=None)
    assert result.returncode == 1
    assert "no OS keyring available" in result.stderr
    assert "--credential-store file" in result.stderr
    if sys.platform.startswith("linux"):
        assert "gnome-keyring" in result.stderr
    assert not config.exists() or not (config / "credentials.json").exists()


@pytest.mark.skipif(os_keyring_present(), reason="this machine has an OS keyring")
def test_without_a_keyring_the_file_is_used_with_one_warning(config: Path) -> None:
    result = auth(config, "set", URL, stdin=TOKEN, store=None)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "no OS keyring found" in warnings[0]
    assert str(config / "credentials.json") in warnings[0]
    assert f"file: {config / 'credentials.json'} (no OS keyring)" in result.stdout
    # Once, when the file is made: not again on every later run that reads it.
    result = auth(config, "show", URL, store=None)
    assert result.returncode == 0
    assert "no OS keyring found" not in result.stderr


# --------------------------------------------------------------------------- a terminal


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")
def test_on_a_terminal_the_token_is_read_without_echo(config: Path) -> None:
    import pty

    master, slave = pty.openpty()
    environment = {**os.environ, CONFIG_DIR_ENV: str(config), STORE_KIND_ENV: "file"}
    # A new session has no controlling terminal, so getpass reads the pty on stdin (and never
    # the terminal this test suite may run in).
    process = subprocess.Popen(
        [sys.executable, "-c", AUTH, "set", URL],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environment,
        cwd=REPO,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + TIMEOUT
        while b"input is hidden" not in seen:
            assert time.monotonic() < deadline, seen
            if select.select([master], [], [], 0.1)[0]:
                seen += os.read(master, 4096)
        os.write(master, TOKEN.encode() + b"\n")
        while process.poll() is None or select.select([master], [], [], 0.1)[0]:
            assert time.monotonic() < deadline, seen
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the other side closed (Linux says EIO)
                    break
                if not chunk:
                    break
                seen += chunk
        assert process.wait(TIMEOUT) == 0, seen
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    text = seen.decode("utf-8", "replace")
    assert f"Bearer token for {KEY} (input is hidden)" in text
    assert TOKEN not in text  # not echoed, not printed
    assert "sk_t…6b5c" in text
    assert stored(config)[KEY]["access_token"] == TOKEN


# --------------------------------------------------------------------------- a real keyring

KEYRING_SCRIPT = """
set -e
# An unlocked login keyring for this D-Bus session only.
printf 'test-password' | gnome-keyring-daemon --unlock --components=secrets > /dev/null
run() { "$PYTHON" -c "$AUTH" "$@"; }
printf '%s\\n' "$TOKEN" | run set "$URL" --credential-store keyring
run show "$URL" --credential-store keyring
run list
"$PYTHON" -c "
from mcp_remote_py.auth.store import bearer_header_for
header = bearer_header_for('$URL')
assert header == ('Authorization', 'Bearer $TOKEN'), 'wrong header'
print('relay header ok')
"
run delete "$URL"
run list
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or not shutil.which("dbus-run-session")
    or not shutil.which("gnome-keyring-daemon"),
    reason="needs dbus-run-session and gnome-keyring-daemon (apt install gnome-keyring)",
)
def test_a_real_secret_service_keyring(tmp_path: Path) -> None:
    # A private D-Bus session with its own GNOME Keyring: the Secret Service path end to end,
    # without touching this machine's own keyring (HOME and XDG_DATA_HOME are the test's).
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "config"
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DBUS_SESSION_BUS_ADDRESS", STORE_KIND_ENV)
    }
    environment.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "share"),
        XDG_RUNTIME_DIR=str(tmp_path),
        PYTHON=sys.executable,
        AUTH=AUTH,
        TOKEN=TOKEN,
        URL=URL,
        **{CONFIG_DIR_ENV: str(config)},
    )
    result = subprocess.run(
        ["dbus-run-session", "--", "bash", "-c", KEYRING_SCRIPT],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert TOKEN not in out
    assert TOKEN not in result.stderr
    assert "  store: keyring: SecretService" in out
    assert "  token: sk_t…6b5c" in out
    assert "relay header ok" in out
    assert f"deleted the credential for {KEY} (store: keyring: SecretService)" in out
    assert out.count(KEY + "\n") >= 2  # show's heading and list's line
    assert not (config / "credentials.json").exists()  # the secret never touched a file
    index = json.loads((config / "keyring-index.json").read_text())
    assert index == {"version": 1, "keys": []}


# --------------------------------------------------------------------------- in process, keyring

memory_only = pytest.mark.skipif(
    os_keyring_present(), reason="this machine has an OS keyring; the fake is not allowed"
)


@memory_only
def test_commands_on_a_keyring_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_credential_store import MemoryKeyring

    backend = MemoryKeyring()
    monkeypatch.setattr(
        auth_cli,
        "_open_store",
        lambda kind: CredentialStore(backend=backend, config_dir=tmp_path),
    )
    monkeypatch.setattr(store_module, "_warned", set())

    class Pipe:
        closed = False

        def isatty(self) -> bool:
            return False

        def readline(self) -> str:
            return TOKEN + "\n"

    monkeypatch.setattr(sys, "stdin", Pipe())
    assert auth_cli.main(["set", URL]) == 0
    assert auth_cli.main(["show", URL]) == 0
    assert auth_cli.main(["list"]) == 0
    assert auth_cli.main(["delete", URL]) == 0
    assert auth_cli.main(["show", URL]) == 1
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    assert "  store: keyring: MemoryKeyring" in out
    assert "  token: sk_t…6b5c" in out
    assert f"{KEY}\n" in out
    assert backend.entries == {}


def test_a_non_ascii_token_stored_before_the_check_stops_the_relay_with_advice(
    config: Path,
) -> None:
    # Stored by an older version (or by hand): the relay must not crash at start but say what
    # to do (exit status 2, like any other usage error).
    assert auth(config, "set", URL, stdin=f"{TOKEN}\n").returncode == 0
    path = config / "credentials.json"
    data = json.loads(path.read_text())
    data["credentials"][KEY]["access_token"] = f"{TOKEN}\u2013"
    path.write_text(json.dumps(data))
    environment = {**os.environ, CONFIG_DIR_ENV: str(config), STORE_KIND_ENV: "file"}
    result = subprocess.run(
        [sys.executable, "-m", "mcp_remote_py", URL],
        input="",
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert result.returncode == 2
    assert "contains characters an HTTP header cannot carry" in result.stderr
    assert f"auth set {URL}" in result.stderr
    assert TOKEN not in result.stderr
