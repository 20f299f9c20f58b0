"""Wiring for one relay run: the HTTP client, stdio, signals, OAuth and the relay, in one nursery.

Part of the command line: it is the one place that hands a feature (OAuth, from ``auth/``) to
the shell's relay, which may not import it.
"""

from __future__ import annotations

import logging
import signal

import httpx
import trio

from .shell.net import build_client, install_ipv4_resolver
from .shell.parent import launcher_gone, launcher_pid
from .shell.relay import Relay
from .shell.relay_options import RelayOptions, SignIn
from .shell.stdio import StdoutWriter, client_lines

__all__ = ["run_relay"]

log = logging.getLogger("mcp_remote_py")


async def run_relay(options: RelayOptions, parent_at_start: int) -> None:
    """Relay stdin/stdout to the server until stdin closes, a signal arrives, stdout breaks or
    the process that launched us (``parent_at_start``, read first thing at start) is gone."""
    if options.network.ipv4:
        install_ipv4_resolver()
    output = StdoutWriter()
    async with build_client(options.network) as client:
        relay = Relay(options, client, output, sign_in=open_oauth_session)
        async with trio.open_nursery() as nursery:
            output.on_closed = nursery.cancel_scope
            nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
            nursery.start_soon(_stop_when_orphaned, nursery.cancel_scope, parent_at_start)
            await relay.run(client_lines(options.max_line))
            nursery.cancel_scope.cancel()
    await output.aclose()


def open_oauth_session(
    options: RelayOptions, client: httpx.AsyncClient, nursery: trio.Nursery | None
) -> SignIn:
    """The OAuth session for the relay's server, made on the server's first 401 (or at start
    when an OAuth token is stored): a relay that never meets a 401 never imports OAuth."""
    from dataclasses import asdict

    from .auth.oauth import OAuthOptions, OAuthSession
    from .auth.store import CredentialStore

    assert options.oauth is not None
    store = CredentialStore(options.credential_store, warn=log.warning)
    return OAuthSession(
        str(options.url),
        client,
        OAuthOptions(**asdict(options.oauth)),
        store=store,
        nursery=nursery,
    )


async def _stop_when_orphaned(
    scope: trio.CancelScope, parent_at_start: int, every: float = 2.0
) -> None:
    """Exit when the client that launched us is gone, even if our stdin stays open."""
    watched = launcher_pid(parent_at_start)
    if watched is None:
        return
    # No OS event tells a process that its launcher died (short of Linux's PR_SET_PDEATHSIG,
    # which a one-file build's bootloader would defeat): look every couple of seconds.
    while not launcher_gone(watched, parent_at_start):  # noqa: ASYNC110
        await trio.sleep(every)
    log.info("the process that started the relay (pid %d) is gone; shutting down", watched)
    scope.cancel()


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    signals = [signal.SIGINT, signal.SIGTERM]
    with trio.open_signal_receiver(*signals) as received:
        async for signum in received:
            log.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return
