"""The protocol core: bytes and events in, decisions out.

Nothing here does I/O, waits, reads a clock or the environment: no trio, no httpx (the
import-linter contract in pyproject.toml keeps it so). ``jsonrpc`` frames and classifies
messages, ``sse`` parses event streams, ``session`` holds what the relay knows of a session,
``backoff`` decides when to try again, ``headers`` reads ``--header`` values, and ``errors`` is the
error tree. Tested with plain synchronous tests in ``tests/unit/``.
"""
