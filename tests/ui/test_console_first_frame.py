"""``subgroups --db F`` paints its first frame before the data layer is imported:
SQLAlchemy, SQLModel and the store come in a worker, after the frame; the section
bar is drawn without importing any section's module.

Run for real: ``python -m app --db F`` on a pseudo-terminal, in a fresh
interpreter whose terminal driver notes which modules were loaded when the first
frame was written.
"""

import json
import subprocess
import sys
from pathlib import Path

from console_pilot import run_on_a_terminal

# Started as ``python -c PROBE OUT --db F``: notes the modules loaded at the first
# frame and once the store is open, then quits.
PROBE = """
import json, sys
from textual.drivers.linux_driver import LinuxDriver

WATCHED = ("sqlalchemy", "sqlmodel", "app.core.store", "app.core.models",
           "app.ui.sections.groups", "app.cli.groups", "app.cli.segments")
out = sys.argv[1]
seen = {}
write = LinuxDriver.write

def noting_write(self, data):
    # The first frame: the screen drawn (the section bar is on it).
    if "first frame" not in seen and "Groups" in data:
        seen["first frame"] = sorted(m for m in WATCHED if m in sys.modules)
    write(self, data)

LinuxDriver.write = noting_write

from app.ui.app import SubgroupsApp
ready = SubgroupsApp._store_ready

async def noting_ready(self):
    await ready(self)
    seen["store open"] = sorted(m for m in WATCHED if m in sys.modules)
    with open(out, "w") as fh:  # now: the console leaves with os._exit
        json.dump(seen, fh)
    self.set_timer(0.3, self.exit)

SubgroupsApp._store_ready = noting_ready

from app.cli import run
sys.exit(run(sys.argv[2:]))
"""


def test_the_first_frame_comes_before_the_data_layer(sample_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "seen.json"
    code = run_on_a_terminal([sys.executable, "-c", PROBE, str(out), "--db", str(sample_db)])
    assert code == 0
    seen = json.loads(out.read_text())
    # The frame (section bar, log pane, footer) before SQLAlchemy, the store, any section.
    assert seen["first frame"] == []
    # Then the worker opened the store and loaded the Groups section (not the CLI's groups).
    assert {"sqlalchemy", "sqlmodel", "app.core.store", "app.ui.sections.groups"} <= set(
        seen["store open"]
    )
    assert "app.cli.groups" not in seen["store open"]


def test_a_store_that_cannot_be_opened_says_why_after_the_console_closes(
    tmp_path: Path,
) -> None:
    """Not an SQLite file: the console closes, and one line on stderr says why (exit 2)."""
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("hello\n")
    done = subprocess.run(
        [sys.executable, "-m", "app", "--db", str(not_a_store)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2
    assert "is not an SQLite database" in done.stderr
    assert not_a_store.read_text() == "hello\n"
