"""``mcp-remote-py doctor``: what stops the relay from working here, and how to fix it.

``cli.main`` is the entry point. ``local`` checks this machine (install, credential and trust
stores, proxy variables, Claude Desktop's config file); ``network``, ``tls`` and ``remote`` check
a server and everything on the way to it; ``selftest`` runs the relay end to end against the
in-process server of ``selftest_server``. ``report`` collects and prints the findings.
"""
