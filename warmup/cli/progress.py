"""A progress bar with rate and ETA on a terminal; silence otherwise."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(
    description: str, total: int | None, *, quiet: bool = False, unit: str = "bytes"
) -> Iterator[Callable[..., None]]:
    """Yield ``update(completed, total=None)``; draws only when stderr is a terminal and not
    ``quiet``. ``unit`` is ``bytes`` (a file being read) or a word for counted things."""
    if quiet or not sys.stderr.isatty():
        yield lambda completed, total=None: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} {unit}/s")

    rate: list[ProgressColumn] = (
        [TaskProgressColumn(), TransferSpeedColumn()]
        if unit == "bytes"
        else [MofNCompleteColumn(), RateColumn()]
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *rate,
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda completed, total=None: bar.update(task, completed=completed, total=total)


@contextmanager
def polled_progress(
    description: str,
    read: Callable[[], tuple[int, int]],
    *,
    quiet: bool = False,
    unit: str = "actions",
    interval: float = 0.25,
) -> Iterator[None]:
    """Draw a bar for work done elsewhere in this process, polling ``read() -> (done, total)``
    (e.g. outbox counts in the store) from a thread until the block ends."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    stop = threading.Event()
    with progress_bar(description, None, unit=unit) as update:

        def poll() -> None:
            while not stop.wait(interval):
                done, total = read()
                update(done, total=total)

        poller = threading.Thread(target=poll, name="progress", daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()
