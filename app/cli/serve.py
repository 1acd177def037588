"""The ``subgroups serve`` command: the console in a browser.

``subgroups serve [--host 127.0.0.1] [--port 8000]`` serves the console of the
store over HTTP (textual-serve): each browser tab that opens the URL gets its
own console of that store, as ``subgroups --db STORE`` would give in a
terminal, until ctrl+c stops the server (and the consoles with it).

``subgroups serve --demo-tour`` serves the demo instead: each tab runs
``subgroups demo --tour`` on a fresh sample store of its own.

A port in use, or an address this machine cannot listen on, is bad input for
this machine: one line on stderr and exit 2, as for ``subgroups landing``.
"""

import argparse
import ipaddress
import os
from pathlib import Path

from app.cli.options import Command, db_option, port
from app.core.store import Store

DEFAULT_PORT = 8000


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    serve_parser = commands.add_parser(
        "serve",
        parents=[db_option()],
        help="the console in a browser: each tab that opens the URL gets its own console",
        description="Serve the console of the store over HTTP (textual-serve). Each browser "
        "tab that opens the printed URL runs its own console of the store, with the rights "
        "of the user who started the server; ctrl+c stops the server and its consoles.",
    )
    serve_parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    serve_parser.add_argument(
        "--port",
        type=port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0: any free one)",
    )
    serve_parser.add_argument(
        "--demo-tour",
        action="store_true",
        help="serve the demo with its guided tour instead (subgroups demo --tour): each tab "
        "gets a fresh sample store of its own, with simulated traffic; no --db",
    )
    serve_parser.set_defaults(func="serve")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _serve(command: str, args: argparse.Namespace, what: str, each_tab: str) -> int:
    """Serve ``command`` as each tab's console until ctrl+c."""
    from app.web.console import ConsoleServer
    from app.web.serving import listen, url_of

    sock = listen(args.host, args.port)
    url = url_of(sock)
    server = ConsoleServer(command, sock)
    print(f"Serving {what} on {url}", flush=True)
    print(each_tab, flush=True)
    if not _is_loopback(args.host):
        print(
            f"Note: anyone who can reach {args.host} gets the console, with your rights.",
            flush=True,
        )
    server.serve()
    print("Stopped.", flush=True)
    return 0


def serve_demo_tour(args: argparse.Namespace) -> int:
    """``subgroups serve --demo-tour``: each tab runs ``subgroups demo --tour`` on a fresh
    sample store of its own (removed when the tab closes). No store is opened here."""
    from app.cli.output import BAD_USAGE, error
    from app.web.console import demo_tour_command

    if getattr(args, "db", None) is not None:
        error("--demo-tour gives each browser tab a fresh sample store of its own: leave out --db")
        return BAD_USAGE
    return _serve(
        demo_tour_command(),
        args,
        "the demo with its guided tour",
        "Each browser tab that opens it gets its own fresh sample store, simulated traffic "
        "and the tour (F8 next, F9 restart); ctrl+c stops.",
    )


def serve_command(args: argparse.Namespace, store: Store) -> int:
    """Serve the console until ctrl+c."""
    # An in-memory store never gets here (no store at :memory:): each tab opens the store.
    from app.web.console import console_command

    db: str | None = None
    if store.is_sqlite:
        db = str(Path(store.display_name).resolve())  # the file's path
    else:
        # The consoles read it from their environment, not from their command line.
        os.environ["SUBGROUPS_DB"] = store.url
    return _serve(
        console_command(db),
        args,
        f"the console of {store.display_name}",
        "Each browser tab that opens it runs its own console of this store; ctrl+c stops.",
    )


COMMANDS: dict[str, Command] = {"serve": serve_command}
