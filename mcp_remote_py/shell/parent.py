"""Noticing that the desktop client that started us is gone, so no orphan relay lingers.

stdin's end of file is the usual signal, but a client that dies while some other process still
holds our stdin (a grandchild that inherited it, say) would leave the relay running. So the relay
also watches the process that launched it: its parent, or, in a one-file frozen build (where a
bootloader process sits in between), the bootloader's parent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["launcher_gone", "launcher_pid"]


def _parent_of(pid: int) -> int | None:
    stat = Path(f"/proc/{pid}/stat")
    try:
        if stat.exists():
            # Field 4, after the parenthesised command name (which may contain spaces).
            return int(stat.read_text().rsplit(")", 1)[1].split()[1])
        out = subprocess.run(
            ["ps", "-o", "ppid=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        )
        return int(out.stdout.strip())
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def launcher_pid(parent: int) -> int | None:
    """The process whose death should end the relay (``parent``: our parent when we started),
    or None if there is none to watch (we were started by, or already orphaned to, init)."""
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS") and sys.platform != "win32":
        # A one-file build unpacks to a temporary folder outside the executable's and runs us
        # under its bootloader: watch the bootloader's parent. (A one-folder build's _MEIPASS is
        # <folder>/_internal, beside the executable, and has no bootloader process.)
        unpacked = Path(sys._MEIPASS).resolve()
        if not unpacked.is_relative_to(Path(sys.executable).resolve().parent):
            parent = _parent_of(parent) or parent
    return parent if parent > 1 else None


def launcher_gone(watched: int, parent_at_start: int) -> bool:
    """True once the launcher has died: we were re-parented, or it no longer exists."""
    if sys.platform != "win32" and os.getppid() != parent_at_start:
        return True
    return not _process_alive(watched)


def _process_alive(pid: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows builds
        import ctypes

        synchronize, wait_timeout = 0x00100000, 0x00000102
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
        handle = kernel32.OpenProcess(synchronize, False, pid)
        if not handle:
            return False
        try:
            return bool(kernel32.WaitForSingleObject(handle, 0) == wait_timeout)
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
