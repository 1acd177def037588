"""``subgroups campaigns send NAME [--outbox DIR | --smtp HOST:PORT [--connections N]]
[--starttls] [--batch-size N] [--heartbeat S] [--takeover-after S]``.

Sends (or resumes sending) a campaign: into a Maildir outbox (by default the
data directory's ``outbox/<store id>/``, one per store), or through an SMTP server, with credentials
from ``SUBGROUPS_SMTP_USER`` / ``SUBGROUPS_SMTP_PASSWORD``. A progress line
goes to stderr when it is a terminal; the summary goes to stdout.

Several senders: on PostgreSQL any number of ``campaigns send NAME`` processes,
on one host or many, share the send (each takes batches nobody holds; a dead
one's batches are taken over once its heartbeat is ``--takeover-after`` seconds
old); each exits 0 when the campaign is sent. On SQLite one process sends: a
second one says which process is sending and exits 0, doing nothing.

Exit codes: 0 sent (by this process or the others sharing the send), or
another process is sending it (SQLite); 1 refused by a rule (already sent, cancelled, being sent
by another process, resumed into another outbox than its first) or paused
because the outbox stopped taking messages or the SMTP server deferred
some (4xx; the message says how to resume); 2 bad input (a malformed --smtp, a
campaign that is not ready); 130 interrupted (ctrl+c: the current batch is
finished first and the campaign is paused; a second ctrl+c stops at once).
"""

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from app.cli.options import Command, db_option, positive_int
from app.cli.output import INTERRUPTED, OK, REFUSED, clear_progress, count
from app.core import actors, campaigns, send_lease, sending
from app.core.errors import InvalidInput, SendInProgress
from app.core.outbox import MaildirOutbox, Outbox, default_outbox_dir
from app.core.smtp_outbox import parse_host_port
from app.core.smtp_pool import MAX_CONNECTIONS, SmtpPool
from app.core.store import Store


def add_parser(actions: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``campaigns send``, added to the ``campaigns`` actions."""
    c_send = actions.add_parser(
        "send", parents=[db_option()], help="send (or resume sending) a campaign"
    )
    c_send.add_argument("name", metavar="NAME")
    where = c_send.add_mutually_exclusive_group()
    where.add_argument(
        "--outbox",
        metavar="DIR",
        help="a Maildir to write messages into (default: this "
        "store's own outbox in the data directory)",
    )
    where.add_argument("--smtp", metavar="HOST:PORT", help="send through this SMTP server")
    c_send.add_argument(
        "--connections",
        type=connection_count,
        metavar="N",
        help=f"with --smtp: send over N connections at once, 1 to {MAX_CONNECTIONS} (default 1)",
    )
    c_send.add_argument(
        "--starttls", action="store_true", help="with --smtp: upgrade the connection with STARTTLS"
    )
    c_send.add_argument(
        "--batch-size",
        type=positive_int,
        default=500,
        metavar="N",
        help="messages per batch; eligibility is re-checked before each (default 500)",
    )
    c_send.add_argument(
        "--heartbeat",
        type=positive_seconds,
        default=send_lease.HEARTBEAT_SECONDS,
        metavar="S",
        help="how often this sender says it is alive (default %(default)s s)",
    )
    c_send.add_argument(
        "--takeover-after",
        type=positive_seconds,
        default=send_lease.LEASE_SECONDS,
        metavar="S",
        help="take over the batches of a sender whose heartbeat is this old (default "
        "%(default)s s; one of this host whose process is gone: at once). On PostgreSQL "
        "several senders share a send, on one host or many; on SQLite a second sender "
        "exits 0 saying which process is sending",
    )
    c_send.set_defaults(func="campaigns_send")


def positive_seconds(text: str) -> float:
    """A number of seconds above 0 (``--heartbeat``, ``--takeover-after``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds above 0")
    return value


def connection_count(text: str) -> int:
    """``--connections N``: a whole number from 1 to ``MAX_CONNECTIONS``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_CONNECTIONS:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 1 and {MAX_CONNECTIONS}")
    return value


def make_outbox(args: argparse.Namespace, store: Store) -> Outbox:
    """The outbox the options name: ``--smtp HOST:PORT`` (over ``--connections N``) or a
    Maildir (``--outbox DIR``, by default the store's own folder in the data directory)."""
    smtp = getattr(args, "smtp", None)
    if getattr(args, "starttls", False) and not smtp:
        raise InvalidInput("--starttls goes with --smtp HOST:PORT", field="starttls")
    connections = getattr(args, "connections", None)
    if connections is not None and not smtp:
        raise InvalidInput("--connections goes with --smtp HOST:PORT", field="connections")
    if smtp:
        host, port = parse_host_port(smtp)
        return SmtpPool.from_env(host, port, connections=connections or 1, starttls=args.starttls)
    return MaildirOutbox(getattr(args, "outbox", None) or default_outbox_dir(store.store_id))


@contextmanager
def _ctrl_c_cancels() -> Iterator[Callable[[], bool]]:
    """While sending: the first ctrl+c asks for a cancel after the current batch, the second
    stops at once. Yields the ``cancelled`` callback for ``send_campaign``."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        print(
            "\nStopping after this batch (ctrl+c again to stop at once) …",
            file=sys.stderr,
            flush=True,
        )

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress_line(name: str) -> Callable[[sending.SendProgress], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(p: sending.SendProgress) -> None:
        share = f" ({p.done * 100 // p.total}%)" if p.total else ""
        print(
            f"\rSending {name!r}: {p.done:,} / {p.total:,}{share} · sent {p.sent:,}"
            f" · skipped {p.skipped + p.without_email:,}\033[K",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def summary(result: sending.SendResult, name: str) -> list[str]:
    """The lines the command prints about a send (also what the console can show)."""
    skipped = result.skipped + result.without_email + result.same_address
    reasons = []
    if result.skipped:
        reasons.append(f"{result.skipped:,} not eligible at their batch's check")
    if result.without_email:
        reasons.append(f"{result.without_email:,} without a usable email address")
    if result.same_address:
        reasons.append(f"{result.same_address:,} whose address got it under another profile")
    why = f" ({skipped:,} skipped: {', '.join(reasons)})" if skipped else ""
    lines = [f"Sent {count(result.sent, 'message')} to {result.outbox}{why}."]
    if result.failed:
        lines.append(f"{count(result.failed, 'message')} refused by the server (not retried).")
    if result.recovered:
        lines.append(
            f"{count(result.recovered, 'message')} from the earlier, interrupted send "
            "were found in the outbox and recorded as sent."
        )
    if result.unknown:
        lines.append(
            f"{count(result.unknown, 'message')} may or may not have gone out when an "
            "earlier send was interrupted; they are not sent again."
        )
    if result.sent_before:
        lines.append(f"Earlier runs had sent {result.sent_before:,}.")
    rate = f", {result.sent / result.seconds:,.0f} messages/s" if result.seconds > 0 else ""
    if result.finished:
        lines.append(
            f"Campaign {name!r} is sent: {count(result.sent_total, 'message')} in all "
            f"({result.seconds:.1f} s{rate})."
        )
    elif result.status == campaigns.PAUSED:
        lines.append(
            f"Campaign {name!r} is paused; run `subgroups campaigns send {name}` again to resume."
        )
    else:
        lines.append(f"Campaign {name!r} is {result.status} (changed by someone else meanwhile).")
    return lines


def campaigns_send(args: argparse.Namespace, store: Store) -> int:
    """``campaigns send NAME``: send or resume; the summary on stdout."""
    outbox = make_outbox(args, store)
    with store.read() as session:
        campaign = campaigns.get_campaign(session, args.name)
    assert campaign.id is not None
    progress = _progress_line(campaign.name)
    try:
        with _ctrl_c_cancels() as cancelled:
            result = sending.send_campaign(
                store=store,
                campaign_id=campaign.id,
                outbox=outbox,
                actor=actors.actor_name(),
                source="cli",
                batch_size=args.batch_size,
                progress=progress,
                cancelled=cancelled,
                lease_seconds=args.takeover_after,
                heartbeat_seconds=args.heartbeat,
            )
    except SendInProgress as exc:
        # SQLite: one sender at a time; the one running will send to everyone.
        print(f"another process ({exc.holder}) is sending {campaign.name}; nothing to do here")
        return OK
    finally:
        if isinstance(outbox, SmtpPool):
            outbox.shutdown()
        if progress is not None:
            clear_progress()
    for line in summary(result, campaign.name):
        print(line)
    if result.finished:
        return OK
    # Paused by ctrl+c here (130), or paused or cancelled by someone else meanwhile (1).
    return INTERRUPTED if cancelled() else REFUSED


COMMANDS: dict[str, Command] = {"campaigns_send": campaigns_send}
