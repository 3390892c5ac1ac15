"""Job-state files beside a checkpoint (phase 2 manifests, undo manifests): owner-only, durable.

They name what a job acts on, like the journal, so they get its mode (0600 whatever the
umask) and are replaced whole: written to a new temporary file, synced, renamed over the
old one, and the directory synced so the new name survives a crash.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path


def replace_private(path: Path, lines: Iterable[str]) -> None:
    """Make `path` hold exactly `lines`, created 0600, atomically and durably."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a crash; unlink never follows a symlink
    # O_EXCL | O_NOFOLLOW: never write through a file or symlink someone else put there
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # exact mode whatever the umask
            for line in lines:
                f.write(line)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
