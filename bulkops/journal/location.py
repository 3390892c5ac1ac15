"""Where a job is: the one place a store is made from a location the user gave."""

from __future__ import annotations

import re
from pathlib import Path

from bulkops.errors import UsageError
from bulkops.journal.local import LocalFileStore
from bulkops.journal.store import JournalStore

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(location: str | Path) -> JournalStore:
    """The store of the job at `location`: a local path today; a URL names its scheme."""
    if isinstance(location, Path):
        return LocalFileStore(location)
    if (match := _SCHEME.match(location)) is None:
        return LocalFileStore(location)
    scheme = match.group(1).lower()
    if scheme == "file":
        return LocalFileStore(location[len("file://") :])
    raise UsageError(f"checkpoint {location}: unknown scheme {scheme!r} (use a local path)")
