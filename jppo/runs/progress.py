"""The live view between chunks: steps done, env-steps/s, ETA, current mean return,
and the runs that diverged (NaN/inf) as they do.

A terminal or a notebook gets a rich progress bar per program; a pipe or a log
file gets one plain line per chunk, so CI logs and `make run | tee` stay readable.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressView:
    """Reports chunk progress of one or more programs.

    `mode` is "auto" (bar on a terminal or in a notebook, lines otherwise),
    "bar", "lines" or "off"; `write` receives the plain lines.
    """

    def __init__(self, mode: str = "auto", stream: TextIO | None = None,
                 write: Callable[[str], None] | None = None) -> None:
        if mode not in ("auto", "bar", "lines", "off"):
            raise ValueError(f"progress={mode!r} is invalid: allowed is one of "
                             "['auto', 'bar', 'lines', 'off']")
        self.stream = stream or sys.stdout
        self.write = write or (lambda line: print(line, file=self.stream, flush=True))
        if mode == "auto":
            mode = "bar" if _interactive(self.stream) else "lines"
        self.mode = mode
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> ProgressView:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps/seed"),
                TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                TextColumn("{task.fields[ret]}"),
                console=Console(file=self.stream), transient=False,
            )
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def start(self, name: str, total_steps: int, note: str = "") -> None:
        self._started[name] = time.perf_counter()
        if self.mode == "bar" and self._bar is not None:
            self._tasks[name] = self._bar.add_task(name, total=total_steps, rate="", ret="")
        elif self.mode == "lines":
            self.write(f"[{name}] {note}".rstrip())

    def update(self, name: str, steps_done: int, total_steps: int, steps_per_second: float,
               mean_return: float, runs: int = 1, diverged: int = 0) -> None:
        """`steps_done`/`total_steps` are per seed; `steps_per_second` counts all `runs`;
        `diverged` runs went non-finite, which their env-computed return hides."""
        remaining = (total_steps - steps_done) * runs / steps_per_second \
            if steps_per_second > 0 else math.inf
        ret = f"return {mean_return:.2f}" if math.isfinite(mean_return) else "return --"
        if diverged:
            ret += f"  diverged {diverged}/{runs}"
        if self.mode == "bar" and self._bar is not None:
            self._bar.update(self._tasks[name], completed=steps_done,
                             rate=f"{steps_per_second:,.0f} steps/s", ret=ret)
        elif self.mode == "lines":
            pct = 100.0 * steps_done / max(total_steps, 1)
            self.write(f"[{name}] {pct:5.1f}%  {steps_done:,}/{total_steps:,} steps/seed  "
                       f"{steps_per_second:,.0f} env-steps/s  ETA {format_seconds(remaining)}  "
                       f"mean {ret}")


    def note(self, name: str, text: str) -> None:
        """A message about one program (a divergence, an early stop), on its own line."""
        if self.mode == "bar" and self._bar is not None:
            self._bar.console.print(f"[{name}] {text}", markup=False, highlight=False)
        elif self.mode == "lines":
            self.write(f"[{name}] {text}")


def _interactive(stream: TextIO) -> bool:
    if _in_notebook():
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (not merely when IPython is importable)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
