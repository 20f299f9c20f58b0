"""Benchmarks for mcp-remote-py: ``python -m bench.run`` (see bench/README.md)."""
