"""``python -m mcp_remote_py``: the same as the ``mcp-remote-py`` command."""

from .cli import main

if __name__ == "__main__":
    main()
