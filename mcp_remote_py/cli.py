"""The ``mcp-remote-py`` command line: ``mcp-remote-py URL [options]`` relays stdio to URL.

``main`` dispatches the ``auth``, ``doctor`` and ``config`` subcommands; anything else is a relay
run, its options parsed by ``options.py``. Heavy modules are imported only once the arguments
are good.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .core.errors import UsageError
from .core.headers import join_split_header_args
from .options import COMMANDS, PROG, build_parser, relay_options, unknown_argument

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> NoReturn:
    # Before anything slow: the launcher may die while we import, and we must know who it was.
    parent_at_start = os.getppid()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["auth"]:
        from .auth.cli import main as auth_main

        sys.exit(auth_main(argv[1:]))
    if argv[:1] == ["doctor"]:
        from .doctor.cli import main as doctor_main

        sys.exit(doctor_main(argv[1:]))
    if argv[:1] == ["config"]:
        from .config import main as config_main

        sys.exit(config_main(argv[1:]))
    argv = join_split_header_args(argv)
    parser = build_parser()
    problem = unknown_argument(parser, argv, COMMANDS)
    if problem:
        parser.error(problem)  # exit status 2, after the usage line
    args = parser.parse_args(argv)
    try:
        options = relay_options(args, os.environ)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        sys.exit(2)

    from .shell.logs import setup_logging

    level = "debug" if args.debug else args.log_level
    setup_logging(level, args.log_file, [value for _, value in options.network.headers])
    if options.network.insecure:
        import logging

        logging.getLogger("mcp_remote_py").warning(
            "WARNING: --insecure is set: TLS certificates are NOT checked; anyone on the network "
            "path can read and change this traffic, tokens included"
        )

    import trio

    from .app import run_relay

    trio.run(run_relay, options, parent_at_start)
    sys.exit(0)
