"""A job in local files: the journal `C` (0600, in a 0700 directory) and its siblings `C.<name>`.

The journal is appended with O_APPEND and fsynced; the open file is locked (`flock`) so
that two bulkops runs never append to one journal, and the lock's holder (host, pid,
since) is written beside it, `C.holder`, so that a refused run can name it. The lock is
the truth, the holder file only says who: one left by a crashed run is overwritten by
the next holder. Sibling objects (`chunks` is `C.chunks`) are written whole through
`PrivateFile`. Every call that may block runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread

from bulkops.errors import JournalBusy, NotAJournal, Refused
from bulkops.journal.atomic import PrivateFile, fsync_dir, make_private_dir

_READ_BATCH = 1 << 18  # bytes of lines read per worker-thread call (memory stays flat)


class LocalObjectWriter:
    """A sibling file being written: spooled to a temporary file, renamed into place."""

    def __init__(self, path: Path, create_only: bool) -> None:
        self._file = PrivateFile(path, create_only=create_only, make_dir=True)

    def write(self, data: bytes) -> None:
        self._file.write(data)

    async def commit(self) -> None:
        await anyio.to_thread.run_sync(self._file.commit)

    async def abort(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._file.abort)


class LocalFileStore:
    """A job kept in local files beside its journal (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def holder_path(self) -> Path:
        return self._sibling("holder")

    def describe(self) -> str:
        return str(self.path)

    @property
    def commit_interval(self) -> float:
        return 0.0

    async def exists(self) -> bool:
        return await anyio.to_thread.run_sync(self.path.exists)

    async def create(self, header: bytes) -> None:
        await anyio.to_thread.run_sync(self._create, header)

    async def acquire(self) -> None:
        if self._fd is None:
            await anyio.to_thread.run_sync(self._acquire)

    async def keep_alive(self) -> None:
        await anyio.sleep_forever()  # a flock lasts as long as the open file

    def owned_until(self) -> float:
        return math.inf

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._release, fd)

    async def append(self, data: bytes) -> None:
        # Not abandoned on cancel: a cancelled caller still waits for the fsync to end.
        await anyio.to_thread.run_sync(self._append, self._writable(), data)

    def read(self) -> AsyncIterator[bytes]:
        return self._lines_of(self.path, missing=NotAJournal(str(self.path), "it does not exist"))

    async def drop_after(self, lines: int) -> None:
        await anyio.to_thread.run_sync(self._drop_after, self._writable(), lines)

    def writer(self, name: str, *, create_only: bool = False) -> LocalObjectWriter:
        return LocalObjectWriter(self._sibling(name), create_only)

    async def get(self, name: str) -> bytes | None:
        try:
            return await anyio.to_thread.run_sync(self._sibling(name).read_bytes)
        except FileNotFoundError:
            return None

    def lines(self, name: str) -> AsyncIterator[bytes]:
        return self._lines_of(self._sibling(name))

    async def delete(self, name: str) -> None:
        await anyio.to_thread.run_sync(lambda: self._sibling(name).unlink(missing_ok=True))

    def locate(self, name: str) -> str:
        return str(self._sibling(name))

    # blocking parts, run in worker threads

    def _sibling(self, name: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"{name!r} is not a sibling object's name")
        return self.path.with_name(f"{self.path.name}.{name}")

    def _create(self, header: bytes) -> None:
        make_private_dir(self.path.parent)
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        try:
            # Born 0600: a chmod afterwards would leave a window where others can read it.
            fd = os.open(self.path, flags, 0o600)
        except FileExistsError as exc:
            raise Refused(
                f"journal {self.path} already exists: resume it or choose another path"
            ) from exc
        self._adopt(fd)
        try:
            self._append(fd, header)
            fsync_dir(self.path.parent)  # the file's name is durable only once its directory is
        except BaseException:
            # no header is durable, so no job exists: drop the file this call created (still
            # locked by us), so that a retry creates it afresh instead of finding no journal
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._fd = None
            self._release(fd)
            raise

    def _acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise NotAJournal(str(self.path), "it does not exist") from exc
        self._adopt(fd)

    def _adopt(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise JournalBusy(str(self.path), self._holder()) from exc
        self._fd = fd
        self._claim()

    def _release(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            self.holder_path.unlink()  # while the lock is still ours
        os.close(fd)  # also releases the flock

    @staticmethod
    def _append(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:  # os.write may write less than asked (large batches, signals)
            view = view[os.write(fd, view) :]
        os.fsync(fd)

    def _drop_after(self, fd: int, lines: int) -> None:
        size = 0
        with self.path.open("rb") as f:
            for _, line in zip(range(lines), f, strict=False):
                size += len(line)
        os.ftruncate(fd, size)
        os.fsync(fd)

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

    @staticmethod
    async def _lines_of(path: Path, missing: Exception | None = None) -> AsyncIterator[bytes]:
        try:
            f = await anyio.to_thread.run_sync(path.open, "rb")
        except FileNotFoundError:
            if missing is None:
                raise
            raise missing from None
        try:
            while batch := await anyio.to_thread.run_sync(f.readlines, _READ_BATCH):
                for line in batch:
                    yield line
        finally:
            f.close()  # closing a file only read from does not block
