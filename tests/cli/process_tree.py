"""A process's descendants, read from /proc (Linux): what a server started and must stop.

Shared by the serve tests and bench/bench_serve.py.
"""

from pathlib import Path


def descendants(pid: int) -> set[int]:
    """The processes whose parent is ``pid``, and theirs, and so on."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found
