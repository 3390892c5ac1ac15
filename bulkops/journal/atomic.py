"""The one owner-only atomic write: every job-state file and plan file is written with it.

A `PrivateFile` is born 0600 (whatever the umask) under a fresh temporary name beside its
target, never through a file or symlink someone else put there; `commit` syncs it, puts
it under its name (replacing, or refusing an existing one when `create_only`) and syncs
the directory so that the name survives a crash. Its calls block: async code runs
`commit` in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

import structlog

from bulkops.errors import Refused

log = structlog.get_logger("bulkops.journal.atomic")

_FLUSH_AT = 1 << 20  # bytes buffered before they go to the temporary file


class PrivateFile:
    """A file written whole, owner-only: `write` bytes, then `commit`, or `abort`."""

    def __init__(self, path: Path, *, create_only: bool = False, make_dir: bool = False) -> None:
        self.path, self.create_only, self.make_dir = path, create_only, make_dir
        self.size = 0  # bytes written so far
        self._tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        self._buffer: list[bytes] = []
        self._pending = 0
        self._fd: int | None = None
        self._done = False

    def write(self, data: bytes) -> None:
        """Add `data`; buffered, written to the temporary file a megabyte at a time."""
        if self._done:
            raise RuntimeError(f"{self.path} is already committed or aborted")
        self._buffer.append(data)
        self._pending += len(data)
        self.size += len(data)
        if self._pending >= _FLUSH_AT:
            self._flush()

    def commit(self) -> None:
        """Sync the bytes and publish them under the file's name; durable on return."""
        try:
            self._flush()
            fd = self._open()
            os.fsync(fd)
            os.close(fd)
            self._fd = None
            if self.create_only:
                try:  # a link never replaces: the first of several writers wins
                    os.link(self._tmp, self.path)
                except FileExistsError as exc:
                    raise Refused(f"{self.path} already exists") from exc
                finally:
                    self._tmp.unlink(missing_ok=True)
            else:
                os.replace(self._tmp, self.path)
            fsync_dir(self.path.parent)
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        """Drop what was written; idempotent, and a no-op after `commit`."""
        self._buffer.clear()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        if not self._done:
            self._done = True
            with contextlib.suppress(OSError):
                self._tmp.unlink()  # unlink never follows a symlink

    def _flush(self) -> None:
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._pending = 0
        fd, view = self._open(), memoryview(data)
        while view:  # os.write may write less than asked
            view = view[os.write(fd, view) :]

    def _open(self) -> int:
        if self._fd is None:
            if self._done:
                raise RuntimeError(f"{self.path} is already committed or aborted")
            if self.make_dir:
                make_private_dir(self.path.parent, warn=False)
            # O_EXCL | O_NOFOLLOW: never write through a file or symlink someone else put there
            flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd = os.open(self._tmp, flags, 0o600)
            os.fchmod(self._fd, 0o600)  # exact mode whatever the umask
        return self._fd


def replace_private(path: Path, lines: Iterable[str]) -> None:
    """Make `path` hold exactly `lines`, created 0600, atomically and durably."""
    f = PrivateFile(path)
    try:
        for line in lines:
            f.write(line.encode())
        f.commit()
    finally:
        f.abort()


def make_private_dir(directory: Path, *, warn: bool = True) -> None:
    """Create a job-state directory 0700 (its parent synced), or warn if one is shared."""
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fsync_dir(directory.parent)
    elif warn:
        warn_if_shared(directory)


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


def fsync_dir(directory: Path) -> None:
    """Sync a directory: a new or renamed name in it is durable only then."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
