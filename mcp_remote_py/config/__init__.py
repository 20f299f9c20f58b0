"""Claude Desktop's ``claude_desktop_config.json``: where it is, what is wrong with it, and the
entry that runs mcp-remote-py.

``file`` finds this OS's config file and reads it, reporting JSON errors with line and column;
``checks`` is what the doctor says about each entry, with ``mcp_remote`` translating
``npx mcp-remote …`` entries into mcp-remote-py's; ``entry`` builds the entry for this install
and writes it (atomically, keeping a timestamped backup, never with a literal secret); ``cli`` is
``mcp-remote-py config show|install``.
"""

from __future__ import annotations

from .checks import EntryFinding, check_entries
from .cli import main
from .entry import InstallCommand, command_for_this_install
from .file import Loaded, default_config_path, load_config
from .mcp_remote import translate_mcp_remote

__all__ = [
    "EntryFinding",
    "InstallCommand",
    "Loaded",
    "check_entries",
    "command_for_this_install",
    "default_config_path",
    "load_config",
    "main",
    "translate_mcp_remote",
]
