"""Running the doctor as a user does: a subprocess, its output read as text or JSON."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.stdout)
        except ValueError:
            raise AssertionError(
                f"not JSON (exit {self.code}):\n{self.stdout}\nstderr:\n{self.stderr}"
            ) from None
        return data

    def check(self, check_id: str) -> dict[str, Any]:
        for check in self.report["checks"]:
            if check["id"] == check_id:
                result: dict[str, Any] = check
                return result
        ids = [c["id"] for c in self.report["checks"]]
        raise AssertionError(f"no check {check_id!r} in {ids}\n{self.stdout}")

    def has(self, check_id: str) -> bool:
        return any(c["id"] == check_id for c in self.report["checks"])


def doctor_env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: its own config dir, the file credential store (no D-Bus probing),
    its own state dir (the relay's era cache, ``state_dir``)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.update(
        {
            "MCP_REMOTE_PY_CONFIG_DIR": str(tmp_path / "config"),
            "MCP_REMOTE_PY_CREDENTIAL_STORE": "file",
            "MCP_REMOTE_PY_STATE_DIR": str(state_dir(tmp_path)),
            "NO_COLOR": "1",
        }
    )
    env.update(extra or {})
    return env


def state_dir(tmp_path: Path) -> Path:
    """Where a doctor run from ``run_doctor`` reads the relay's era cache."""
    return tmp_path / "state"


async def run_doctor(
    *args: str, tmp_path: Path, env: dict[str, str] | None = None, timeout: float = 90
) -> Run:
    """``python -m mcp_remote_py.doctor ARGS`` (the Claude config check points at a file in
    tmp_path unless the arguments choose one)."""
    argv = list(args)
    if "--claude-config" not in argv and "--no-claude-config" not in argv:
        argv += ["--claude-config", str(tmp_path / "no-such-claude-config.json")]
    with trio.fail_after(timeout):
        done = await trio.run_process(
            [sys.executable, "-m", "mcp_remote_py.doctor", *argv],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=doctor_env(tmp_path, env),
            cwd=REPO,
        )
    return Run(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def text_of(check: dict[str, Any]) -> str:
    """Everything a check says, for assertions."""
    parts = [check["summary"], *check.get("details", []), check.get("fix", "")]
    return "\n".join(parts)


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1].split("/")[0])


def assert_no_secret(run: Run, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in run.stdout, f"{secret!r} leaked into stdout:\n{run.stdout}"
        assert secret not in run.stderr, f"{secret!r} leaked into stderr:\n{run.stderr}"
