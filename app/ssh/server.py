"""The SSH server: public-key logins of registered admins, one console per session.

A login is accepted only when its name is an admin's and the key offered is
theirs (``app.core.admins``); passwords and keyboard-interactive logins are
not offered. Each session that asks for a terminal gets its own console
process on a pty of the client's size (``console_pty``), acting as that admin
(``SUBGROUPS_ADMIN``), so their role is enforced by the services and their
name is the ``Actor`` of what they do. ``Admin Session Started`` and ``Admin
Session Ended`` are written with the admin's role and the client's address.
Anything else a client may ask for (a command, a subsystem such as sftp,
port forwarding) is refused.
"""

import asyncio
import base64
import contextlib
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from app.core import actors, admins, ledger
from app.core.event_names import ADMIN_SESSION_ENDED, ADMIN_SESSION_STARTED
from app.core.places import data_dir
from app.core.store import Store
from app.ssh.console_pty import PtyProcess, console_command

HOST_KEY_NAME = "ssh_host_ed25519_key"
SOURCE = "ssh"
# A terminal's size when the client asks for a pty without one (0 x 0).
DEFAULT_SIZE = (80, 24)


def default_host_key_path() -> Path:
    """Where the host key is kept unless --host-key says otherwise: the data directory."""
    return data_dir() / HOST_KEY_NAME


@dataclass(frozen=True)
class HostKey:
    key: asyncssh.SSHKey
    path: Path
    fingerprint: str
    made: bool


def load_or_make_host_key(path: Path) -> HostKey:
    """The server's key at ``path``, made there (ed25519, mode 0600) if there is none."""
    made = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = asyncssh.generate_private_key("ssh-ed25519")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.export_private_key())
        made = True
    key = asyncssh.read_private_key(str(path))
    return HostKey(key, path, key.get_fingerprint("sha256"), made)


def client_address(conn: asyncssh.SSHServerConnection) -> str:
    peer = conn.get_extra_info("peername")
    if not peer:
        return "unknown"
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


@dataclass
class ServerState:
    """What the connections of one server share."""

    store: Store
    max_sessions: int
    command: Callable[[], Sequence[str]] = console_command
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    sessions: set["ConsoleSession"] = field(default_factory=set)

    # --- the store, read and written off the event loop ---------------------------------

    def key_blob(self, name: str) -> bytes | None:
        with self.store.read() as session:
            line = admins.public_key_of(session, name)
        if line is None:
            return None
        return base64.b64decode(line.split()[1])

    def login(self, name: str) -> admins.AdminRow | None:
        with self.store.read() as session:
            return admins.login_admin(session, name)

    def record(self, event: str, admin: str, properties: dict[str, Any]) -> None:
        with self.store.write() as session:
            role = actors.role_of(session, admin)
            ledger.record(
                session,
                name=event,
                source=SOURCE,
                actor=admin,
                properties={"Admin": admin, "Role": role, **properties},
            )


class AdminServer(asyncssh.SSHServer):
    """One client connection: who they are, checked against the store."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.client = "unknown"
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.client = client_address(conn)

    def begin_auth(self, username: str) -> bool:
        return True  # every login authenticates

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        blob = await asyncio.to_thread(self.state.key_blob, username)
        if blob is None:
            self.state.log(f"refused {username!r} from {self.client}: not an admin")
            return False
        if key.public_data != blob:
            self.state.log(
                f"refused {username!r} from {self.client}: the key "
                f"{key.get_fingerprint('sha256')} is not theirs"
            )
            return False
        return True

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        assert self.conn is not None
        return ConsoleSession(self.state, self.conn.get_extra_info("username"), self.client)


class ConsoleSession(asyncssh.SSHServerSession[bytes]):
    """One session: a console on a pty, as the admin who logged in."""

    def __init__(self, state: ServerState, admin: str, client: str) -> None:
        self.state = state
        self.admin = admin
        self.client = client
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.term: tuple[str, int, int] | None = None
        self.process: PtyProcess | None = None
        self.started = time.monotonic()
        self.refusal: str | None = None
        # Pairs the session's two events (``app.core.presence``).
        self.id = uuid.uuid4().hex

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any
    ) -> bool:
        columns, rows = term_size[0] or DEFAULT_SIZE[0], term_size[1] or DEFAULT_SIZE[1]
        self.term = (term_type or "xterm-256color", columns, rows)
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.refusal = "subgroups ssh gives the console only; run commands on the host itself"
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def session_started(self) -> None:
        asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        assert self.chan is not None
        if self.refusal is None and self.term is None:
            self.refusal = "subgroups ssh gives a console: ask for a terminal (ssh -t)"
        if self.refusal is None and len(self.state.sessions) >= self.state.max_sessions:
            self.refusal = (
                f"{len(self.state.sessions)} sessions are open, the most this server takes "
                f"(--max-sessions {self.state.max_sessions}); try again later"
            )
        if self.refusal is not None:
            self.chan.write(f"subgroups: {self.refusal}\r\n".encode())
            self.chan.exit(1)
            return
        assert self.term is not None
        term_type, columns, rows = self.term
        self.state.sessions.add(self)
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in (actors.ADMIN_ENV, actors.VIA_ENV, "COLUMNS", "LINES")
        }
        env.update(
            {
                "TERM": term_type,
                "SUBGROUPS_DB": self.state.store.url,
                actors.ADMIN_ENV: self.admin,
                actors.VIA_ENV: "ssh",
            }
        )
        env.setdefault("LANG", "C.UTF-8")
        self.process = PtyProcess(
            self.state.command(),
            env=env,
            columns=columns,
            rows=rows,
            output=self.chan.write,
            ended=self._ended,
        )
        await asyncio.to_thread(
            self.state.record,
            ADMIN_SESSION_STARTED,
            self.admin,
            {
                "Client": self.client,
                "Session": self.id,
                "Host": socket.gethostname(),
                "Process": self.process.pid,
            },
        )
        self.state.log(
            f"session of {self.admin!r} from {self.client}: console pid {self.process.pid}, "
            f"{columns}x{rows}"
        )

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.process is not None:
            self.process.write(data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self.process is not None and width and height:
            self.process.resize(width, height)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.process is not None:
            self.process.hang_up()

    def _ended(self, code: int) -> None:
        asyncio.get_running_loop().create_task(self._finish(code))

    async def _finish(self, code: int) -> None:
        """The console exited: record it, then end the client's session with its status."""
        seconds = round(time.monotonic() - self.started, 1)
        properties = {
            "Client": self.client,
            "Session": self.id,
            "Seconds": seconds,
            "Exit Status": code,
        }
        try:
            await asyncio.to_thread(self.state.record, ADMIN_SESSION_ENDED, self.admin, properties)
        finally:
            self.state.sessions.discard(self)
            self.state.log(f"session of {self.admin!r} from {self.client} ended ({code})")
            if self.chan is not None:
                with contextlib.suppress(Exception):  # the client is gone already
                    self.chan.exit(max(code, 0))


async def start_server(
    state: ServerState, *, host: str, port: int, host_key: HostKey
) -> asyncssh.SSHAcceptor:
    """Listen on ``host:port`` (0: any free port); ``acceptor.sockets`` says where."""
    return await asyncssh.create_server(
        lambda: AdminServer(state),
        host,
        port,
        server_host_keys=[host_key.key],
        encoding=None,
        allow_scp=False,
        agent_forwarding=False,
        x11_forwarding=False,
        # A lone login attempt is no reason to hold a connection open long.
        login_timeout=60,
    )


def hang_up_all(state: ServerState) -> None:
    """Stop every session's console (the server is stopping)."""
    for session in list(state.sessions):
        if session.process is not None:
            session.process.hang_up()
