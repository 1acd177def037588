"""The ``subgroups landing`` command: serve the landing page, or print a profile's links.

``subgroups landing [--host 127.0.0.1] [--port 8080] [--access-log FILE]
[--workers N]`` serves DESIGN.md's routes until ctrl+c; with ``--workers N``
from N processes sharing the socket (``app.web.workers``). ``subgroups landing --link IDENTITY
[--campaign NAME]`` prints that person's signed preferences and unsubscribe
links (on the page's public base URL) and exits: a way to try the page with
a browser or curl.
"""

import argparse
import contextlib
import sys
from typing import TextIO

from app.cli.options import Command, db_option, port, positive_int
from app.core import campaigns, landing, profiles
from app.core.errors import InvalidInput
from app.core.store import Store
from app.core.tokens import (
    load_keyring,
    preferences_url,
    secret_path,
    store_binding,
    unsubscribe_url,
)


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    landing_parser = commands.add_parser(
        "landing",
        parents=[db_option()],
        help="serve the email landing page (preferences and one-click unsubscribe) over HTTP",
    )
    landing_parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    landing_parser.add_argument(
        "--port", type=port, default=8080, help="port to listen on (default 8080; 0: any free one)"
    )
    landing_parser.add_argument(
        "--access-log", metavar="FILE", help="append the access log to FILE (default: stderr)"
    )
    landing_parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="serve from N processes sharing the socket (default 1; one writes at a time)",
    )
    landing_parser.add_argument(
        "--link",
        metavar="IDENTITY",
        help="print this profile's signed preferences and unsubscribe links instead of serving",
    )
    landing_parser.add_argument(
        "--campaign", metavar="NAME", help="with --link: the campaign the links come from"
    )
    landing_parser.set_defaults(func="landing")


def _print_links(args: argparse.Namespace, store: Store) -> int:
    with store.read() as session:
        profile = profiles.get_profile(session, args.link)
        campaign_id: int | None = None
        if args.campaign:
            name = args.campaign.strip()
            campaign = (
                campaigns.get_campaign_by_id(session, int(name))
                if name.isdigit()
                else campaigns.get_campaign(session, name)
            )
            campaign_id = campaign.id
        base_url = landing.get_settings(session).base_url
        binding = store_binding(session)
    assert profile.id is not None
    token = load_keyring().sign(profile.id, campaign_id, store=binding)
    print(f"Preferences: {preferences_url(base_url, token)}")
    print(f"Unsubscribe: {unsubscribe_url(base_url, token)}")
    print(f"One-click:   curl -d List-Unsubscribe=One-Click {unsubscribe_url(base_url, token)}")
    return 0


def _open_log(path: str | None) -> tuple[TextIO, str]:
    if path in (None, "-"):
        return sys.stderr, "stderr"
    try:
        # Line-buffered: each request's line is in the file as soon as it is written.
        return open(path, "a", encoding="utf-8", buffering=1), path  # noqa: SIM115
    except OSError as exc:
        raise InvalidInput(
            f"--access-log {path}: cannot write: {exc.strerror}", field="access_log"
        ) from exc


def landing_command(args: argparse.Namespace, store: Store) -> int:
    """Serve the landing page (or, with --link, print a profile's links)."""
    if args.campaign and not args.link:
        raise InvalidInput("--campaign goes with --link IDENTITY", field="campaign")
    if args.link:
        return _print_links(args, store)
    if args.workers > 1 and store.display_name == ":memory:":
        raise InvalidInput("--workers needs a store file or a database server", field="workers")
    load_keyring()  # made now (0600) if this install has none, so the path printed exists
    log, log_name = _open_log(args.access_log)
    try:
        if args.workers > 1:
            return _serve_workers(args, store, log, log_name)
        from app.web.serving import LandingServer

        server = LandingServer(store, host=args.host, port=args.port, access_log=log)
        _say_serving(store, server.url, log_name)
        # uvicorn stops cleanly on ctrl+c, then raises it again for us: a normal stop.
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        print("Stopped.", flush=True)
    finally:
        if log is not sys.stderr:
            log.close()
    return 0


def _say_serving(store: Store, url: str, log_name: str, workers: str = "") -> None:
    with store.read() as session:
        base_url = landing.get_settings(session).base_url
    print(f"Serving the landing page of {store.display_name} on {url}", flush=True)
    print(f"Public base URL in links: {base_url}", flush=True)
    print(f"Access log: {log_name}; link keys: {secret_path()}", flush=True)
    if workers:
        print(workers, flush=True)
    print("Routes: /p/<token>, /u/<token>, /healthz; ctrl+c stops.", flush=True)


def _serve_workers(args: argparse.Namespace, store: Store, log: TextIO, log_name: str) -> int:
    from app.web.serving import listen, url_of
    from app.web.workers import lock_path, run_workers

    sock = listen(args.host, args.port)
    path = lock_path(store)
    writes = (
        f"writes one at a time under {path}"
        if path
        else "each writes its own batches to the database server"
    )
    _say_serving(store, url_of(sock), log_name, f"Workers: {args.workers} processes; {writes}.")
    code = run_workers(store=store, sock=sock, workers=args.workers, access_log=log)
    print("Stopped.", flush=True)
    return code


COMMANDS: dict[str, Command] = {"landing": landing_command}
