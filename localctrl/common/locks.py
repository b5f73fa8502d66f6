"""Locks between processes (filelock): one writer per cache entry, and a line saying so when a process must wait."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


@contextmanager
def locked(path: Path, what: str, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the lock file `path` for the block; when another process holds it, say so and wait for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"another localctrl process is {what}: waiting for it (lock file {path})")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
