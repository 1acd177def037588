"""What the demo tour costs the console: CPU seconds of the console with and without
the tour, under the same simulated traffic, side by side.

The tour asks the store (in a worker) whether its step is done each time new
ledger events arrive; the demo's simulator writes one every 0.5-2 s, and this
benchmark writes one every 0.05-0.1 s to make any cost visible. Each run copies a
demo store (the sample data and campaigns, as ``subgroups demo`` loads them), starts
the simulator, runs the console headless (Textual's ``run_test``) for ``--seconds``
and reads two clocks: the UI thread's CPU (the event loop, where a cost would
slow keys and frames) and the whole process's CPU (workers and simulator too).
Runs alternate plain / tour so the machine's load falls on both alike; the load
average is printed before and after.

    python bench/bench_tour.py [--runs 3] [--seconds 15]
"""

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from app.core import sample_campaigns
from app.core.outbox import MaildirOutbox
from app.core.simulator import TrafficSimulator
from app.core.store import open_store
from app.ui.app import SubgroupsApp
from app.ui.tour_app import TourApp


def make_template(folder: Path) -> Path:
    path = folder / "template.db"
    store = open_store(path, create=True)
    try:
        sample_campaigns.load_sample(
            store=store, actor="bench", outbox=MaildirOutbox(folder / "out")
        )
    finally:
        store.dispose()
    return path


async def one_run(app_class: type[SubgroupsApp], db: Path, seconds: float) -> tuple[float, float]:
    """(UI thread CPU s, process CPU s) over ``seconds`` of traffic with the console open."""
    store = open_store(db)
    simulator = TrafficSimulator(store, interval=(0.05, 0.1), seed=7)
    app = app_class(store=store, offer_sample_data=False)
    app.animation_level = "none"
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(2.0)  # the first loads
            simulator.start()
            ui, process = time.thread_time(), time.process_time()
            await pilot.pause(seconds)
            ui, process = time.thread_time() - ui, time.process_time() - process
            simulator.stop()
    finally:
        simulator.stop()
        store.dispose()
    return ui, process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--seconds", type=float, default=15.0, help="each run's window")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-tour-"))
    try:
        template = make_template(folder)
        print(f"load average before: {os.getloadavg()}")
        results: dict[str, list[tuple[float, float]]] = {"plain": [], "tour": []}
        for n in range(args.runs):
            for name, app_class in (("plain", SubgroupsApp), ("tour", TourApp)):
                db = folder / f"{name}-{n}.db"
                shutil.copyfile(template, db)
                ui, process = asyncio.run(one_run(app_class, db, args.seconds))
                results[name].append((ui, process))
                print(f"run {n + 1} {name:5}: UI thread {ui:.3f} s CPU, process {process:.3f} s")
        print(f"load average after: {os.getloadavg()}")
        plain_ui = statistics.median(r[0] for r in results["plain"])
        tour_ui = statistics.median(r[0] for r in results["tour"])
        plain_all = statistics.median(r[1] for r in results["plain"])
        tour_all = statistics.median(r[1] for r in results["tour"])
        print(
            f"medians over {args.seconds:.0f} s: UI thread plain {plain_ui:.3f} s, "
            f"tour {tour_ui:.3f} s ({tour_ui / plain_ui:.2f}x); process plain "
            f"{plain_all:.3f} s, tour {tour_all:.3f} s ({tour_all / plain_all:.2f}x)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
