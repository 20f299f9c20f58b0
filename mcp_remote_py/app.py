"""Wiring for one relay run: the HTTP client, stdio, signals and the relay, in one nursery."""

from __future__ import annotations

import logging
import signal

import trio

from .net import build_client, install_ipv4_resolver
from .relay import Relay, RelayOptions
from .stdio import StdoutWriter, client_lines

__all__ = ["run_relay"]

log = logging.getLogger("mcp_remote_py")


async def run_relay(options: RelayOptions) -> None:
    """Relay stdin/stdout to the server until stdin closes, a signal arrives or stdout breaks."""
    if options.network.ipv4:
        install_ipv4_resolver()
    output = StdoutWriter()
    async with build_client(options.network) as client:
        relay = Relay(options, client, output)
        async with trio.open_nursery() as nursery:
            output.on_closed = nursery.cancel_scope
            nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
            await relay.run(client_lines(options.max_line))
            nursery.cancel_scope.cancel()
    await output.aclose()


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    signals = [signal.SIGINT, signal.SIGTERM]
    with trio.open_signal_receiver(*signals) as received:
        async for signum in received:
            log.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return
