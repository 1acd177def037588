"""The ``subgroups inbound`` command: the SMTP listener for mail that comes back.

``subgroups inbound [--host 127.0.0.1] [--port 2525] [--domain D]`` takes mail
for the inbound domain D (default: the store's ``inbound-domain`` setting) until
ctrl+c: ``unsubscribe+T@D`` (mailto: unsubscribes), ``bounces+T@D`` (delivery
status notifications) and ``fbl@D`` (feedback reports). What each one does
is ``app.core.inbound``'s; the listener is ``app.inbound.server``.
"""

import argparse
import contextlib
import signal
from types import FrameType

from app.cli.options import Command, db_option, port
from app.core import settings
from app.core.errors import InvalidInput
from app.core.inbound import InboundDomain, Refused, clean_domain
from app.core.store import Store
from app.core.tokens import load_keyring, secret_path, store_binding


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "inbound",
        parents=[db_option()],
        help="take mailto: unsubscribes, bounces and complaints over SMTP for the inbound domain",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=port, default=2525, help="port to listen on (default 2525; 0: any free one)"
    )
    parser.add_argument(
        "--domain",
        metavar="D",
        help="the inbound domain: mail to unsubscribe+T@D, bounces+T@D and fbl@D is taken "
        "(default: the store's inbound-domain setting)",
    )
    parser.set_defaults(func="inbound")


def _stop_on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def inbound_command(args: argparse.Namespace, store: Store) -> int:
    """Listen for inbound mail until ctrl+c or SIGTERM."""
    from app.inbound.server import InboundServer

    with store.read() as session:
        binding = store_binding(session)
        configured = settings.get_settings(session).inbound_domain
    given = args.domain if args.domain is not None else configured
    if not given:
        raise InvalidInput(
            "no inbound domain: give --domain D or run: subgroups settings set inbound-domain D",
            field="domain",
        )
    try:
        domain_name = clean_domain(given)
    except Refused as exc:
        raise InvalidInput(f"--domain: {exc}", field="domain") from exc
    keyring = load_keyring()
    domain = InboundDomain(domain_name, keyring, binding)
    server = InboundServer(store, domain, host=args.host, port=args.port)

    def ready() -> None:
        print(
            f"Taking mail for {domain_name} on {args.host}:{server.port} into {store.display_name}",
            flush=True,
        )
        print(
            f"Addresses: unsubscribe+T@{domain_name}, bounces+T@{domain_name}, "
            f"fbl@{domain_name}; link keys: {secret_path()}; ctrl+c stops.",
            flush=True,
        )

    signal.signal(signal.SIGTERM, _stop_on_term)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run(on_ready=ready)
    except OSError as exc:
        raise InvalidInput(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", field="port"
        ) from exc
    print("Stopped.", flush=True)
    return 0


COMMANDS: dict[str, Command] = {"inbound": inbound_command}
