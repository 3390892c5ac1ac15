"""Makers of journal stores for the store contract tests: add one here to test a new store.

A factory takes a fresh temporary directory and returns a function that makes a store
for one job there; every call of that function is another run's view of the same job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bulkops.journal.local import LocalFileStore
from bulkops.journal.memory import MemorySpace, MemoryStore
from bulkops.journal.store import JournalStore

StoreMaker = Callable[[], JournalStore]


def local_store(tmp: Path) -> StoreMaker:
    return lambda: LocalFileStore(tmp / "jobs" / "cp.journal")


def memory_store(tmp: Path) -> StoreMaker:
    space = MemorySpace()
    return lambda: MemoryStore(space, name="cp")


FACTORIES: dict[str, Callable[[Path], StoreMaker]] = {
    "local": local_store,
    "memory": memory_store,
}
