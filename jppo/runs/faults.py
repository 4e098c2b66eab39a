"""Operating-system faults and interrupts, told in one line.

A run writes to disk for hours; when the disk fills, the output folder cannot
be written or the user presses Ctrl-C, what they need is which path failed,
why (the OS's reason), what is already safe on disk and the command that
continues. `RunError` carries such a line (the `jppo` command prints it
without a traceback); `RunInterrupted` is a `KeyboardInterrupt` that says the
same, so a notebook's interrupt still behaves as one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path


class RunError(Exception):
    """A fault of the run directory or the OS, described in one line."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, after what was finished was saved; says how to resume."""


_TENSORSTORE_ERRNO = re.compile(r"os_error_code='?(\d+)")


def os_errno(error: BaseException) -> int | None:
    """The errno behind `error`: its own, or one found along its cause/context
    chain (tensorstore, under orbax, reports it as `[os_error_code='28']`)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            return current.errno
        found = _TENSORSTORE_ERRNO.search(str(current))
        if found:
            return int(found.group(1))
        current = current.__cause__ or current.__context__
    return None


def reason(error: BaseException) -> str:
    """The OS's words for `error` ('No space left on device'), else its first line."""
    code = os_errno(error)
    if code is not None:
        return f"{os.strerror(code)} [errno {code}]"
    text = str(error).strip().splitlines()
    return first_line(text[0] if text else type(error).__name__)


def first_line(text: str, limit: int = 240) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


def check_out_dir(out: Path) -> None:
    """Fail in one line, before anything compiles, if results cannot be written
    to `out`: it is a file, a parent is a file, or the folder (or the nearest
    existing parent, where `out` would be created) is not writable. The folder
    is created and a probe file written, so the file system itself answers."""
    if out.exists() and not out.is_dir():
        raise RunError(f"out={str(out)!r} is a file, not a directory: choose a directory")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise RunError(f"out={str(out)!r} cannot be created: {str(existing)!r} is a file, "
                       "not a directory")
    what = "is not writable" if existing == out else "cannot be created"
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"out={str(out)!r} {what}: {str(existing)!r} refuses writes "
                       f"({_access_reason(existing)})")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".jppo-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise RunError(f"out={str(out)!r} {what}: {_os_error_words(error)}") from None


def _access_reason(path: Path) -> str:
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return os.strerror(errno.EROFS)
    except OSError:
        pass
    return os.strerror(errno.EACCES)


def _os_error_words(error: OSError) -> str:
    """An OSError as 'PATH: reason', saying what ENOENT means when the parent exists
    (a file system such as /proc that accepts no new entries)."""
    path = error.filename
    words = reason(error)
    if error.errno == errno.ENOENT and path is not None and Path(path).parent.is_dir():
        words = f"the file system at {str(Path(path).parent)!r} accepts no new entries " \
                f"({words})"
    return f"{str(path)!r}: {words}" if path is not None else words


def describe(error: BaseException, doing: str) -> str:
    """'cannot DOING: PATH: reason' for an OSError or a RunError (kept as it is)."""
    if isinstance(error, RunError):
        return str(error)
    if isinstance(error, OSError):
        return f"cannot {doing}: {_os_error_words(error)}"
    return f"cannot {doing}: {reason(error)}"


def quiet_orphaned_writes() -> None:
    """After a failed checkpoint write, tensorstore completes the writes still in
    flight into orbax's event loop, already closed, and prints a traceback for
    each ('Event loop is closed'): the failure is reported once, so drop those."""
    previous = sys.excepthook
    if getattr(previous, "quiets_orphaned_writes", False):
        return

    def hook(kind, value, traceback):
        if not (kind is RuntimeError and str(value) == "Event loop is closed"):
            previous(kind, value, traceback)

    hook.quiets_orphaned_writes = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def notify(line: str) -> None:
    """A line the user must see whatever the progress mode (stderr)."""
    print(f"jppo: {line}", file=sys.stderr, flush=True)


def resume_command(out: Path) -> str:
    return f"jppo resume {shlex.quote(str(out))}"


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, so a chunk's files and checkpoint are
    written whole; then raise it. A second Ctrl-C stops at once (the writes are
    atomic: a cut-short one leaves only a temporary that a resume removes). Only
    the main thread receives signals: elsewhere the block runs as is. A process
    that ignores SIGINT (`nohup`, a script's background job) keeps ignoring it."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: object) -> None:
        if pending:
            raise KeyboardInterrupt
        pending.append(signum)
        notify("Ctrl-C: saving the finished chunk first (Ctrl-C again stops at once)")

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if pending:
        raise KeyboardInterrupt
