"""``pytest -rs`` names why each test skipped, async (pytest-trio) tests too.

Run in a pytest of its own (``pytester``), with trio mode and this suite's report hook: an async
test's ``pytest.skip(reason)`` showed as "_pytest/python.py:187: Skipped" before the hook.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_an_async_tests_skip_keeps_its_reason_and_place(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makeconftest("from tests.conftest import pytest_runtest_makereport  # noqa: F401\n")
    pytester.makepyfile(
        test_skips="""
        import pytest
        import trio

        async def test_skipped_in_the_test():
            pytest.skip("no IPv6 loopback here")

        async def test_skipped_in_a_nursery():
            async with trio.open_nursery():
                pytest.skip("the server speaks JSON only")

        def test_skipped_in_a_plain_test():
            pytest.skip("not glibc")
        """
    )
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=3)
    out = result.stdout.str()
    assert "_pytest/python.py" not in out
    assert ": Skipped" not in out
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] test_skips.py:5: no IPv6 loopback here",
            "SKIPPED [[]1[]] test_skips.py:9: the server speaks JSON only",
            "SKIPPED [[]1[]] test_skips.py:12: not glibc",
        ],
        consecutive=False,
    )
