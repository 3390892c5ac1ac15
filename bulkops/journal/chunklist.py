"""A job's chunks, validated once: the file beside the journal that a run and its resumes read.

`manifest.scan_manifest` validates a manifest and, for a run, writes every chunk it plans
into a chunk list. The journal's header holds the list's sha256, so the run and every
resume read the chunks back without parsing or validating the manifest again, and a
list that changed on disk is refused before anything is sent.

One JSON array per line, one line per chunk:

    ["npm","acme","web",["1.0.0","1.0.1"],{"1.0.1":"REV"}]      format, namespace (or
                                                                null), package, versions,
                                                                pinned revisions
Files are created owner-only (0600) under a temporary name and renamed into place once
synced, so a crash never leaves a half-written list under the final name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import orjson

from bulkops.errors import ChunkListCorrupt, UsageError
from bulkops.model import Chunk, PackageRef

__all__ = ["ChunkList", "ChunkListWriter", "chunk_list_path", "read_chunks"]


def chunk_list_path(checkpoint: Path) -> Path:
    """Where a checkpoint's chunk list lives: beside it, named after it."""
    return checkpoint.with_name(checkpoint.name + ".chunks")


@dataclass(frozen=True, slots=True)
class ChunkList:
    """A written chunk list: where it is, its bytes' sha256, how many chunks it holds."""

    path: Path
    sha256: str
    chunks: int


class ChunkListWriter:
    """Writes a chunk list; `commit` makes it durable under its name, leaving it aborts it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        self._sha = hashlib.sha256()
        self._buffer: list[bytes] = []
        self._pending = 0
        self.chunks = 0
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self._fd: int | None = os.open(self._tmp, flags, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot write the chunk list {path}: {exc.strerror}") from exc

    def add(self, ref: PackageRef, versions: Sequence[str], revisions: Mapping[str, str]) -> None:
        line = orjson.dumps([ref.format, ref.namespace, ref.package, versions, revisions])
        self._buffer.append(line + b"\n")
        self._pending += len(line) + 1
        self.chunks += 1
        if self._pending >= 1 << 20:
            self._flush()

    def commit(self) -> ChunkList:
        """Sync the list and rename it into place (replacing an orphan of an earlier try)."""
        self._flush()
        fd = self._open_fd()
        os.fsync(fd)
        os.close(fd)
        self._fd = None
        os.replace(self._tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)  # the new name is durable only once its directory is
        finally:
            os.close(dir_fd)
        return ChunkList(self.path, self._sha.hexdigest(), self.chunks)

    def abort(self) -> None:
        """Drop what was written; idempotent, and a no-op after `commit`."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ChunkListWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _flush(self) -> None:
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._pending = 0
        self._sha.update(data)
        fd, view = self._open_fd(), memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            needed = os.fstat(fd).st_size + len(view)
            free = shutil.disk_usage(self.path.parent).free
            self.abort()
            raise UsageError(
                f"no space left to write the chunk list {self.path}: it needs more than "
                f"{needed:,} bytes and {free:,} are free (the journal needs about as much "
                "again); free space or choose a --checkpoint on another disk. Nothing was sent"
            ) from exc

    def _open_fd(self) -> int:
        if self._fd is None:
            raise RuntimeError(f"chunk list {self.path} is already committed or aborted")
        return self._fd


def read_chunks(path: Path, sha256: str) -> Iterator[Chunk]:
    """The chunks of the list at `path`, in order, once its bytes are proven to be `sha256`'s.

    The digest is checked before the first chunk is yielded and again as the file is read,
    so neither a list changed before the run nor one changed during it is ever sent.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after a generator's last yield
    except OSError as exc:
        raise ChunkListCorrupt(
            f"the job's chunk list {path} cannot be read: {exc.strerror}"
        ) from exc
    with f:
        if hashlib.file_digest(f, "sha256").hexdigest() != sha256:
            raise ChunkListCorrupt(f"the job's chunk list {path} changed since the job started")
        f.seek(0)
        sha = hashlib.sha256()
        for number, line in enumerate(f, 1):
            sha.update(line)
            try:
                fmt, namespace, package, versions, revisions = orjson.loads(line)
            except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
                raise ChunkListCorrupt(f"{path}:{number}: not a chunk ({exc})") from exc
            yield Chunk.build(PackageRef(fmt, namespace, package), tuple(versions), revisions)
        if sha.hexdigest() != sha256:
            raise ChunkListCorrupt(f"the job's chunk list {path} changed while it was read")
