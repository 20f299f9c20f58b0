from __future__ import annotations

import sys

import pytest
import trio

from mcp_remote_py.shell import memory


async def test_release_soon_trims_once_after_a_burst(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.abc.Clock
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "_trim", lambda pad: calls.append(pad) or 1)
    for _ in range(5):  # five large messages in a row: one trim
        memory.release_soon()
    await trio.sleep(memory.DELAY / 2)
    assert calls == []  # not while the message may still be referenced
    await trio.sleep(memory.DELAY)
    assert calls == [0]
    memory.release_soon()  # a later large message: trimmed again
    await trio.sleep(memory.DELAY * 2)
    assert calls == [0, 0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_malloc_trim_is_found_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    trim = memory._lookup()
    assert callable(trim)
    assert trim(0) in (0, 1)
