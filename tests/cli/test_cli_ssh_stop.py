"""``subgroups ssh`` stopped by SIGTERM, as ``systemctl stop`` stops the README's unit:
it stops as ctrl+c does (its consoles hung up) and exits 0, not killed by the signal."""

import signal
import subprocess
from pathlib import Path

from app.core.store import open_store


def test_sigterm_stops_the_ssh_server_with_exit_0(
    tmp_path: Path, python: str, subprocess_env: dict[str, str]
) -> None:
    db = tmp_path / "shop.db"
    open_store(db, create=True).dispose()
    env = {**subprocess_env, "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [python, "-m", "app", "ssh", "--db", str(db), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Serving the console over SSH on 127.0.0.1:"), first
        assert proc.stdout.readline().startswith("Host key SHA256:")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, (proc.returncode, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
