"""``python -m mcp_remote_py.doctor`` runs ``mcp-remote-py doctor``."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
