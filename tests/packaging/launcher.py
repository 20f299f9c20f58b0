"""A desktop client stand-in for tests/packaging: it starts the relay, sees ``initialize``
answered, says ``READY <relay pid>`` on stdout, then waits to be killed.

    LAUNCHER_CONFIG='{"command": [...], "stdin": "pipe", "stderr": "PATH"}' \
        python -m tests.packaging.launcher

``stdin``: ``"pipe"``, the relay's stdin is a pipe only this process holds (a client that dies
takes it along), or ``"inherit"``, the relay shares this process's stdin, which the test holds
open and writes ``initialize`` into itself (a client that dies while another process still holds
the relay's stdin). With ``"via_parent": true`` the launcher is itself started by a short-lived
parent that passes on the READY line (adding the launcher's pid) and exits, so the launcher loses
its parent while it and the relay live on.

The configuration travels in the environment, so that nothing in this process's command line
matches what the tests look for in the relay's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "frozen-test-launcher", "version": "1"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def main() -> None:
    config = json.loads(os.environ.pop("LAUNCHER_CONFIG"))
    if config.pop("via_parent", False):
        launcher = subprocess.Popen(
            [sys.executable, "-m", "tests.packaging.launcher"],
            stdout=subprocess.PIPE,
            env={**os.environ, "LAUNCHER_CONFIG": json.dumps(config)},
        )
        assert launcher.stdout is not None
        line = launcher.stdout.readline().decode().strip()
        print(f"{line} {launcher.pid}", flush=True)
        os._exit(0)  # leave the launcher running, orphaned
    piped = config["stdin"] == "pipe"
    with open(config["stderr"], "wb") as stderr:
        relay = subprocess.Popen(
            config["command"],
            stdin=subprocess.PIPE if piped else None,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert relay.stdout is not None
    if piped:
        assert relay.stdin is not None
        relay.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
        relay.stdin.write(json.dumps(INITIALIZED).encode() + b"\n")
        relay.stdin.flush()
    while True:
        answer = relay.stdout.readline()
        if not answer:
            sys.exit(f"the relay closed its stdout before answering initialize: {relay.wait()}")
        if json.loads(answer).get("id") == 0:
            break
    print(f"READY {relay.pid}", flush=True)
    while True:  # like a desktop client: keep the pipes open until something kills us
        time.sleep(3600)


if __name__ == "__main__":
    main()
