"""Where a journal's bytes live: the `JournalStore` seam and its local-file implementation.

The journal logic (`bulkops.journal.journal`) encodes, decodes and recovers records; a store only
keeps lines of bytes. Every method is synchronous and may block: the journal calls them in
a worker thread. A later store (S3 with conditional writes) implements the same Protocol.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import structlog

from bulkops.errors import JournalBusy, Refused

log = structlog.get_logger("bulkops.journal.journal")


class JournalStore(Protocol):
    """Durable, append-only storage of a journal's lines."""

    def describe(self) -> str:
        """Where the journal is, for messages (a path, a URL)."""
        ...

    def exists(self) -> bool:
        """Whether a journal is already stored here."""
        ...

    def create(self, header: bytes) -> None:
        """Create the journal holding `header`, durable on return; refuse if one exists."""
        ...

    def open(self) -> None:
        """Open an existing journal for appending, excluding any other writer."""
        ...

    def append(self, data: bytes) -> None:
        """Append `data` (whole lines) to the journal; durable on return."""
        ...

    def read(self) -> Iterator[bytes]:
        """The stored lines, in order, each with its b"\\n" except perhaps a torn last one."""
        ...

    def truncate(self, size: int) -> None:
        """Drop every byte past the first `size` (a torn tail); durable on return."""
        ...

    def close(self) -> None:
        """Release the journal; idempotent."""
        ...


class LocalFileStore:
    """A journal in one local file: created 0600 in a 0700 directory, appended with O_APPEND.

    The open file is locked (`flock`) so that two bulkops runs never append to one journal;
    the lock's holder (host, pid, since) is written beside it, `<journal>.holder`, so that
    a run refused the lock can name it. The lock is the truth, the holder file only says
    who: one left by a crashed run is overwritten by the next holder.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def holder_path(self) -> Path:
        return self.path.with_name(self.path.name + ".holder")

    def describe(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, header: bytes) -> None:
        directory = self.path.parent
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _fsync_dir(directory.parent)
        else:
            warn_if_shared(directory)
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        try:
            # Born 0600: a chmod afterwards would leave a window where others can read it.
            fd = os.open(self.path, flags, 0o600)
        except FileExistsError as exc:
            raise Refused(
                f"journal {self.path} already exists: resume it or choose another path"
            ) from exc
        self._adopt(fd)
        self.append(header)
        _fsync_dir(directory)  # the file's name is durable only once its directory is

    def open(self) -> None:
        if self._fd is None:
            self._adopt(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC))

    def append(self, data: bytes) -> None:
        fd = self._writable()
        view = memoryview(data)
        while view:  # os.write may write less than asked (large batches, signals)
            view = view[os.write(fd, view) :]
        os.fsync(fd)

    def read(self) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            yield from f

    def truncate(self, size: int) -> None:
        fd = self._writable()
        os.ftruncate(fd, size)
        os.fsync(fd)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                self.holder_path.unlink()  # while the lock is still ours
            os.close(fd)  # also releases the flock

    def _adopt(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise JournalBusy(str(self.path), self._holder()) from exc
        self._fd = fd
        self._claim()

    def _claim(self) -> None:
        """Write who holds the lock; best effort, since it only informs a refused run."""
        since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        data = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": since})
        flags = os.O_CREAT | os.O_TRUNC | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        with contextlib.suppress(OSError):
            fd = os.open(self.holder_path, flags, 0o600)
            try:
                os.write(fd, data.encode())
            finally:
                os.close(fd)

    def _holder(self) -> str:
        """Who holds the lock, as its holder file says."""
        try:
            found = json.loads(self.holder_path.read_text())
            return f"pid {int(found['pid'])} on host {found['host']}, since {found['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "its host and pid are not recorded"

    def _writable(self) -> int:
        if self._fd is None:
            raise RuntimeError(f"journal {self.path} is not open for writing")
        return self._fd


def warn_if_shared(directory: Path) -> None:
    """Warn when a job-state directory that already existed lets group or others in."""
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        # files are born 0600, but an open directory lists the job's state and, if
        # writable, lets others swap its files for their own
        log.warning(
            "checkpoint_dir_shared",
            directory=str(directory.resolve()),
            mode=oct(mode),
            advice=f"chmod 700 {directory.resolve()} or choose a private directory",
        )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
