"""The ``subgroups ssh`` command: the console for registered admins, over SSH.

``subgroups ssh [--host 127.0.0.1] [--port 2222] [--host-key FILE]
[--max-sessions N]`` serves until ctrl+c. The host key is made on first start
(ed25519, mode 0600, in the data directory unless --host-key names a file)
and its fingerprint printed, for admins to check on their first login.
"""

import argparse
import asyncio
import signal
from pathlib import Path

from app.cli.options import Command, db_option, port, positive_int
from app.core.errors import InvalidInput
from app.core.store import Store


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    ssh = commands.add_parser(
        "ssh",
        parents=[db_option()],
        help="serve the console to registered admins over SSH (public keys only)",
    )
    ssh.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ssh.add_argument(
        "--port", type=port, default=2222, help="port to listen on (default 2222; 0: any free one)"
    )
    ssh.add_argument(
        "--host-key",
        metavar="FILE",
        help="the server's private key (default: ssh_host_ed25519_key in the data directory; "
        "made on first start)",
    )
    ssh.add_argument(
        "--max-sessions",
        type=positive_int,
        default=10,
        metavar="N",
        help="at most N consoles at once (default 10); more are turned away",
    )
    ssh.set_defaults(func="ssh")


def ssh(args: argparse.Namespace, store: Store) -> int:
    from app.ssh import server

    path = Path(args.host_key).expanduser() if args.host_key else server.default_host_key_path()
    try:
        host_key = server.load_or_make_host_key(path)
    except (OSError, ValueError) as exc:  # unreadable, or not a private key
        raise InvalidInput(f"--host-key {path}: cannot use it: {exc}", field="host_key") from exc
    state = server.ServerState(store=store, max_sessions=args.max_sessions)

    async def serve() -> None:
        acceptor = await server.start_server(
            state, host=args.host, port=args.port, host_key=host_key
        )
        # SIGTERM (systemctl stop) stops it as ctrl+c does: the consoles are hung up
        # and the command exits 0, rather than dying at once with the signal. Set
        # before saying it serves: whoever reads that may stop it at once.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, acceptor.close)
        bound = acceptor.sockets[0].getsockname()
        made = " (made now)" if host_key.made else ""
        print(
            f"Serving the console over SSH on {bound[0]}:{bound[1]} for the admins of "
            f"{store.display_name}",
            flush=True,
        )
        print(f"Host key {host_key.fingerprint}{made}: {host_key.path}", flush=True)
        try:
            await acceptor.wait_closed()
        finally:
            server.hang_up_all(state)

    try:
        asyncio.run(serve())
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    return 0


COMMANDS: dict[str, Command] = {"ssh": ssh}
