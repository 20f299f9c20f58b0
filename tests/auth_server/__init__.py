"""A real OAuth authorization server and a protected MCP server, on loopback, for the tests.

``server.py`` runs them (uvicorn in threads); ``browser.py`` is the headless "browser" that
follows the authorization URL's redirects to the client's callback.
"""
