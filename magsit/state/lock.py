"""One run per job at a time, across cron, the daemon and a human.

An flock on a lock file beside the state file: the kernel releases it when the holder dies
(SIGKILL, power loss), so a dead run never blocks the next one, and there is no stale-pid logic.
flock locks belong to the open file, so two threads of one process also exclude each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path

from magsit.errors import LockedError


class JobLock:
    def __init__(
        self, state_path: str | Path, job: str, wait_seconds: float = 0.0, stop: threading.Event | None = None
    ) -> None:
        self.path = Path(f"{state_path}.{job}.lock")
        self.job = job
        self.wait_seconds = wait_seconds  # 0: a held lock means "skip"; >0: a short critical section to queue for
        self.stop = stop  # set (daemon stopping): give up waiting at once
        self._fd: int | None = None

    def acquire(self) -> JobLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        deadline = time.monotonic() + self.wait_seconds
        while not _try_flock(fd):
            # Polling rather than a blocking flock: a wedged holder must not hang this run forever.
            if time.monotonic() < deadline and not (self.stop is not None and self.stop.is_set()):
                time.sleep(0.05)
                continue
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 64, 0).decode().strip()
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise LockedError(f"{self.job}: another run holds the lock{who}; skipped") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> JobLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
