"""A built executable ends cleanly: no process and no unpacked ``_MEI*`` folder left behind.

A one-file PyInstaller build is two processes: the bootloader unpacks the bundle into a
``_MEI*`` folder in the temp directory, runs Python in a child process, waits for it, and
deletes the folder when the child is gone. So a one-file relay must end *as a whole*: when stdin
closes, when it is sent SIGTERM, and when the desktop client that started it dies, whether the
client's pipes die with it or not.

These tests build nothing: they skip unless ``MCP_REMOTE_PY_BIN`` names a built executable (see
``packaging/build.py`` and ``packaging/smoke.sh``). Each run gets its own temp directory
(``TMPDIR``/``TMP``/``TEMP``), so what is unpacked, and what is left behind, can be seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.integration.conftest import RunningServer
from tests.integration.harness import REPO, SERVER_MODES

EXIT_TIMEOUT = 15.0  # the relay itself promises ~2 s for a dead launcher and 2+2 s at stdin EOF
READY_TIMEOUT = 60.0  # a first one-file start unpacks ~25 MB, slow on a busy CI machine
WATCH_INTERVAL = 2.0  # how often the relay looks whether its launcher is still there


def frozen_binary() -> Path | None:
    """The executable ``MCP_REMOTE_PY_BIN`` names, or None if it names no built executable."""
    configured = os.environ.get("MCP_REMOTE_PY_BIN", "").strip()
    if not configured:
        return None
    words = [configured] if Path(configured).is_file() else shlex.split(configured)
    if len(words) != 1 or not Path(words[0]).is_file():
        return None
    path = Path(words[0]).resolve()
    if path.name.lower().startswith("python"):  # e.g. "python -m mcp_remote_py": not a build
        return None
    return path


BINARY = frozen_binary()
ONEFILE = BINARY is not None and not (BINARY.parent / "_internal").is_dir()

pytestmark = [
    pytest.mark.skipif(
        BINARY is None,
        reason="MCP_REMOTE_PY_BIN does not name a built executable (packaging/build.py builds one)",
    ),
    pytest.mark.timeout(120),
]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "frozen-test", "version": "1"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
HANDSHAKE = (json.dumps(INITIALIZE) + "\n" + json.dumps(INITIALIZED) + "\n").encode()


def processes_with(tag: str) -> list[int]:
    """Live processes whose command line contains ``tag`` (the relay's, bootloader included)."""
    if sys.platform.startswith("linux"):
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()  # empty for a zombie
            except OSError:
                continue
            if tag.encode() in cmdline:
                pids.append(int(entry.name))
        return pids
    if sys.platform == "win32":
        # The pattern is built in PowerShell from two halves, so that PowerShell's own command
        # line does not match it.
        half = len(tag) // 2
        script = (
            f"$p = '*' + '{tag[:half]}' + '{tag[half:]}' + '*'; "
            "Get-CimInstance Win32_Process | Where-Object { $_.CommandLine -like $p } | "
            "ForEach-Object { $_.ProcessId }"
        )
        command = ["powershell", "-NoProfile", "-NonInteractive", "-Command", script]
        output = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
        return [int(word) for word in output.split()]
    output = subprocess.run(
        ["ps", "-axww", "-o", "pid=,stat=,command="], capture_output=True, text=True, timeout=30
    ).stdout
    pids = []
    for line in output.splitlines():
        pid, state, command = (line.strip().split(None, 2) + ["", ""])[:3]
        if tag in command and not state.startswith("Z"):
            pids.append(int(pid))
    return pids


def wait_until_gone(tag: str, timeout: float = EXIT_TIMEOUT) -> list[int]:
    """Poll until no process carries ``tag``; returns what is still there at the deadline."""
    deadline = time.monotonic() + timeout
    while (left := processes_with(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def kill(pid: int) -> None:
    try:
        if sys.platform == "win32":
            subprocess.run(["taskkill", "/F", "/PID", str(pid)], capture_output=True, check=False)
        else:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def read_line(stream: IO[bytes], timeout: float = READY_TIMEOUT) -> bytes:
    """One line from a pipe, or TimeoutError (a thread: Windows pipes cannot be polled)."""
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        raise TimeoutError(f"no line within {timeout} s")
    return lines[0]


def read_answer(stream: IO[bytes], request_id: int = 0) -> dict[str, object]:
    while True:
        line = read_line(stream)
        if not line:
            raise EOFError("the relay closed stdout before it answered")
        message: dict[str, object] = json.loads(line)
        if message.get("id") == request_id:
            return message


@dataclass
class Run:
    """One relay run: a tag in its command line, its own temp directory, its stderr."""

    tag: str
    temp: Path
    stderr: Path
    log: Path

    def command(self, url: str) -> list[str]:
        assert BINARY is not None
        return [str(BINARY), url, "--log-file", str(self.log)]

    def env(self) -> dict[str, str]:
        temp = str(self.temp)
        return {**os.environ, "TMPDIR": temp, "TMP": temp, "TEMP": temp}

    def unpacked(self) -> list[Path]:
        return sorted(self.temp.glob("_MEI*"))

    def stderr_text(self) -> str:
        if not self.stderr.exists():
            return ""
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def check_running(self) -> None:
        """The relay is up: processes with our tag, and (one file) the bundle unpacked here."""
        assert processes_with(self.tag), "the relay is not running"
        if ONEFILE:
            assert self.unpacked(), f"the one-file build did not unpack into {self.temp}"

    def check_clean_exit(self, timeout: float = EXIT_TIMEOUT) -> None:
        left = wait_until_gone(self.tag, timeout)
        assert not left, f"still running after {timeout} s: {left}\n{self.stderr_text()}"
        assert not self.unpacked(), f"left behind: {self.unpacked()}"
        assert "Traceback" not in self.stderr_text(), self.stderr_text()


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = RunningServer("streamable-sse", SERVER_MODES["streamable-sse"])
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    tag = uuid.uuid4().hex
    temp = tmp_path / "temp"
    temp.mkdir()
    this = Run(tag, temp, tmp_path / "relay-stderr.txt", tmp_path / f"relay-{tag}.log")
    yield this
    for pid in processes_with(tag):  # whatever a failed test left running
        kill(pid)


def start_launcher(
    run: Run, url: str, stdin: str, stdin_fd: int | None, via_parent: bool = False
) -> subprocess.Popen[bytes]:
    config = {
        "command": run.command(url),
        "stdin": stdin,
        "stderr": str(run.stderr),
        "via_parent": via_parent,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.packaging.launcher"],
        stdin=stdin_fd if stdin_fd is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env={**run.env(), "LAUNCHER_CONFIG": json.dumps(config)},
        cwd=REPO,
    )


def wait_ready(launcher: subprocess.Popen[bytes]) -> None:
    assert launcher.stdout is not None
    line = read_line(launcher.stdout)
    assert line.startswith(b"READY "), f"the launcher said {line!r}"


def kill_launcher(launcher: subprocess.Popen[bytes]) -> None:
    launcher.kill()  # SIGKILL / TerminateProcess: the client gets no chance to tidy up
    launcher.wait()
    if launcher.stdout is not None:
        launcher.stdout.close()


@contextlib.contextmanager
def initialized_relay(server_url: str, run: Run) -> Iterator[subprocess.Popen[bytes]]:
    """The built relay with a session open; killed and its pipes closed on the way out."""
    with run.stderr.open("wb") as stderr:
        relay = subprocess.Popen(
            run.command(server_url),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=run.env(),
        )
    assert relay.stdin is not None
    assert relay.stdout is not None
    try:
        relay.stdin.write(HANDSHAKE)
        relay.stdin.flush()
        answer = read_answer(relay.stdout)
        assert answer.get("result"), answer
        run.check_running()
        yield relay
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
        if not relay.stdin.closed:
            relay.stdin.close()
        relay.stdout.close()


def test_stdin_eof_exits_0_and_leaves_nothing(server_url: str, run: Run) -> None:
    with initialized_relay(server_url, run) as relay:
        assert relay.stdin is not None
        assert relay.stdout is not None
        relay.stdin.close()
        assert read_line(relay.stdout, EXIT_TIMEOUT) == b""
        assert relay.wait(EXIT_TIMEOUT) == 0, run.stderr_text()
    run.check_clean_exit()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_reaches_the_relay_which_exits_0_and_leaves_nothing(
    server_url: str, run: Run
) -> None:
    with initialized_relay(server_url, run) as relay:
        relay.terminate()  # to the bootloader of a one-file build, which passes it on
        assert relay.wait(EXIT_TIMEOUT) == 0, run.stderr_text()
    run.check_clean_exit()
    assert "received SIGTERM" in run.stderr_text()


def test_killed_client_takes_its_pipes_along_and_the_relay_ends(server_url: str, run: Run) -> None:
    """The usual crash: the client dies, its end of the relay's stdin closes: end of input."""
    launcher = start_launcher(run, server_url, "pipe", None)
    try:
        wait_ready(launcher)
        run.check_running()
        kill_launcher(launcher)
        run.check_clean_exit()
    finally:
        if launcher.poll() is None:
            kill_launcher(launcher)


@pytest.mark.xfail(
    sys.platform == "win32" and ONEFILE,
    reason="mcp_remote_py/shell/parent.py does not yet look past a one-file bootloader on Windows: "
    "it watches the bootloader, which outlives the client",
    strict=False,
)
def test_killed_client_ends_the_relay_even_while_its_stdin_stays_open(
    server_url: str, run: Run
) -> None:
    """The client dies but another process still holds the relay's stdin (here, this test): no
    end of input ever comes, so the relay must notice that its launcher is gone (for a one-file
    build: the bootloader's parent, not the bootloader) and end within a few seconds."""
    read_end, write_end = os.pipe()
    try:
        launcher = start_launcher(run, server_url, "inherit", read_end)
        os.close(read_end)
        read_end = -1
        try:
            os.write(write_end, HANDSHAKE)
            wait_ready(launcher)
            run.check_running()
            kill_launcher(launcher)
            run.check_clean_exit()
        finally:
            if launcher.poll() is None:
                kill_launcher(launcher)
    finally:
        os.close(write_end)
        if read_end != -1:
            os.close(read_end)


@pytest.mark.xfail(
    not ONEFILE and sys.platform != "win32",
    reason="mcp_remote_py/shell/parent.py takes a one-folder build for a one-file one "
    "(sys._MEIPASS is "
    "<folder>/_internal there, not the executable's folder) and watches the client's parent",
    strict=False,
)
def test_the_relay_lives_on_while_its_client_does_even_if_the_clients_parent_goes(
    server_url: str, run: Run
) -> None:
    """A client whose own parent exits (a desktop app started by a launcher that quits) keeps
    its relay: the relay must watch the process that started it, not that one's parent."""
    parent = start_launcher(run, server_url, "pipe", None, via_parent=True)
    launcher_pid = None
    try:
        assert parent.stdout is not None
        words = read_line(parent.stdout).split()
        assert words[0] == b"READY", words
        launcher_pid = int(words[2])
        assert parent.wait(EXIT_TIMEOUT) == 0
        parent.stdout.close()
        run.check_running()
        before = sorted(processes_with(run.tag))
        time.sleep(3 * WATCH_INTERVAL)  # a relay that watched the wrong process would end now
        assert sorted(processes_with(run.tag)) == before, run.stderr_text()
        kill(launcher_pid)
        run.check_clean_exit()
    finally:
        if launcher_pid is not None:
            kill(launcher_pid)
        if parent.poll() is None:
            kill_launcher(parent)
