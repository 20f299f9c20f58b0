"""``mcp-remote-py doctor``: what stops the relay from working here, and how to fix it.

``cli.main`` is the entry point. ``local`` checks this machine (install, credential and trust
stores, proxy variables, Claude Desktop's config file). ``remote`` checks a server and everything
on the way to it, for the ``Target`` of ``target``, running in order: ``reach`` (name, connection
and TLS, measured by ``network`` and ``tls``), ``http_probe`` (a raw POST initialize, redirects
followed by hand), ``legacy_sse`` (the legacy GET, and /mcp or /sse when the path is wrong),
``mcp_session`` (a real session through the relay's transports), ``authorization`` and
``streaming`` (buffering, compression, ``--soak``); ``http_checks`` says what their statuses and
headers mean. ``selftest`` runs the relay end to end against the in-process server of
``selftest_server``. ``report`` collects and prints the findings.
"""
