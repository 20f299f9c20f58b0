"""The frozen executable's entry point: exactly the ``mcp-remote-py`` command."""

from mcp_remote_py.cli import main

if __name__ == "__main__":
    main()
