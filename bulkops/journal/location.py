"""Where a job is: the one place a store is made from a location the user gave.

A location is a local path (`Path`) or a URL (`str`): `s3://BUCKET/PREFIX` keeps the job
in S3 (`bulkops.aws.s3lazy`), reached with the AWS settings `use_aws` was given (the job's
profile and credentials; the bucket's own region), so a job outlives its machine.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bulkops.errors import UsageError
from bulkops.journal.local import LocalFileStore
from bulkops.journal.store import JournalStore

if TYPE_CHECKING:
    from bulkops.aws.s3lease import LeaseTimes
    from bulkops.aws.session import AwsSettings

Checkpoint = Path | str  # a local journal file, or the URL of a job kept remotely

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_REMOTE: dict[str, object] = {}  # the AWS settings and KMS key remote stores are opened with


def use_aws(
    settings: AwsSettings, *, kms_key: str | None = None, lease: LeaseTimes | None = None
) -> None:
    """The AWS settings, SSE-KMS key and lease times of every remote store opened later."""
    _REMOTE.update(aws=settings, kms_key=kms_key, lease=lease)


def as_checkpoint(text: str | Path) -> Checkpoint:
    """A location as the user wrote it: a URL stays a URL, anything else is a path."""
    if isinstance(text, Path):
        return text
    if (match := _SCHEME.match(text)) is None:
        return Path(text)
    scheme = match.group(1).lower()
    if scheme == "file":
        return Path(text[len("file://") :])
    if scheme != "s3":
        raise UsageError(f"checkpoint {text}: unknown scheme {scheme!r} (a path or s3://)")
    return text


def is_remote(location: Checkpoint) -> bool:
    return isinstance(location, str)


def job_in(directory: Checkpoint, name: str) -> Checkpoint:
    """The location of a job called `name` in a directory or under a URL prefix."""
    if isinstance(directory, Path):
        return directory / name
    return directory.rstrip("/") + "/" + name


def spool_dir(location: Checkpoint) -> Path:
    """Where a job's local scratch files go: beside a local journal, else the temp dir."""
    return location.parent if isinstance(location, Path) else Path(tempfile.gettempdir())


def open_store(location: Checkpoint) -> JournalStore:
    """The store of the job at `location`."""
    where = as_checkpoint(location)
    if isinstance(where, Path):
        return LocalFileStore(where)
    from bulkops.aws.s3lazy import LazyS3Store  # only a remote job needs the AWS SDK

    return LazyS3Store(
        where,
        _REMOTE.get("aws"),  # type: ignore[arg-type]
        _REMOTE.get("kms_key"),  # type: ignore[arg-type]
        _REMOTE.get("lease"),  # type: ignore[arg-type]
    )
