"""mcp-remote-py: relay a stdio MCP client to a remote MCP server over HTTP."""

from ._version import __version__

__all__ = ["__version__"]
