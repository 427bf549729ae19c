"""Progress bars for work that runs in another process (Verilator, yosys, nextpnr) and leaves files behind."""
from __future__ import annotations

import threading
import time
from typing import Callable


def run_watched(work: Callable[[], None], *, total: int, desc: str, done: Callable[[], int], unit: str = "step",
                describe: Callable[[int], str] | None = None, show: bool = True) -> None:
    """Run `work` in a thread; while it runs, a tqdm bar shows `done()` of `total` (polled twice a second).

    An exception raised by `work` is raised again here.
    """
    failure: list[BaseException] = []

    def guarded():
        try:
            work()
        except BaseException as exc:  # surfaced in the caller's thread
            failure.append(exc)

    if not show:
        guarded()
    else:
        from tqdm import tqdm

        worker = threading.Thread(target=guarded)
        worker.start()
        with tqdm(total=total, desc=desc, unit=unit) as bar:
            while worker.is_alive():
                _advance(bar, done(), describe)
                time.sleep(0.5)
            _advance(bar, done(), describe)
        worker.join()
    if failure:
        raise failure[0]


def _advance(bar, count: int, describe) -> None:
    if count > bar.n:
        bar.update(count - bar.n)
        if describe is not None:
            bar.set_description(describe(count))
