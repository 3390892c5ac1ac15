"""A job held in memory: the store the tests use, with the local store's semantics.

Stores made on one `MemorySpace` share its job, as two runs share one checkpoint:
ownership excludes a second owner (`JournalBusy`), `create` refuses an existing journal,
and `tear` leaves a torn last line as a crash mid-append would.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio.lowlevel

from bulkops.errors import JournalBusy, NotAJournal, Refused


@dataclass(slots=True)
class MemorySpace:
    """One job's stored state, shared by every `MemoryStore` made on it."""

    journal: list[bytes] | None = None  # lines, each ending in b"\n" but perhaps the last
    objects: dict[str, bytes] = field(default_factory=dict)
    owner: MemoryStore | None = None
    holder: str = ""

    def tear(self, data: bytes) -> None:
        """Append `data` with no newline: a crash in the middle of an append."""
        if self.journal is None:
            raise RuntimeError("no journal to tear")
        self.journal.append(data.rstrip(b"\n"))


class MemoryObjectWriter:
    """A sibling object being written: kept in a buffer, published whole by `commit`."""

    def __init__(self, store: MemoryStore, name: str, create_only: bool) -> None:
        self._store, self._name, self._create_only = store, name, create_only
        self._parts: list[bytes] = []
        self._done = False

    def write(self, data: bytes) -> None:
        if self._done:
            raise RuntimeError(f"{self._store.locate(self._name)} is already committed or aborted")
        self._parts.append(data)

    async def commit(self) -> None:
        await anyio.lowlevel.checkpoint()
        if self._done:
            raise RuntimeError(f"{self._store.locate(self._name)} is already committed or aborted")
        self._done = True
        objects = self._store.space.objects
        if self._create_only and self._name in objects:
            raise Refused(f"{self._store.locate(self._name)} already exists")
        objects[self._name] = b"".join(self._parts)
        self._parts.clear()

    async def abort(self) -> None:
        self._done = True
        self._parts.clear()


class MemoryStore:
    """A job in a `MemorySpace` (a new one unless given); `name` is what messages show."""

    def __init__(self, space: MemorySpace | None = None, name: str = "job") -> None:
        self.space = space if space is not None else MemorySpace()
        self.name = name

    def describe(self) -> str:
        return f"memory:{self.name}"

    @property
    def commit_interval(self) -> float:
        return 0.0

    async def exists(self) -> bool:
        await anyio.lowlevel.checkpoint()
        return self.space.journal is not None

    async def create(self, header: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        if self.space.journal is not None:
            raise Refused(
                f"journal {self.describe()} already exists: resume it or choose another path"
            )
        self.space.journal = []
        self._own()
        self.space.journal.extend(_lines(header))

    async def acquire(self) -> None:
        await anyio.lowlevel.checkpoint()
        if self.space.journal is None:
            raise NotAJournal(self.describe(), "it does not exist")
        self._own()

    async def keep_alive(self) -> None:
        await anyio.sleep_forever()

    def owned_until(self) -> float:
        return math.inf if self.space.owner is self else -math.inf

    async def release(self) -> None:
        if self.space.owner is self:
            self.space.owner, self.space.holder = None, ""

    async def append(self, data: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        self._journal().extend(_lines(data))

    async def read(self) -> AsyncIterator[bytes]:
        if self.space.journal is None:
            raise NotAJournal(self.describe(), "it does not exist")
        for line in list(self.space.journal):
            await anyio.lowlevel.checkpoint()
            yield line

    async def drop_after(self, lines: int) -> None:
        await anyio.lowlevel.checkpoint()
        del self._journal()[lines:]

    def writer(self, name: str, *, create_only: bool = False) -> MemoryObjectWriter:
        return MemoryObjectWriter(self, name, create_only)

    async def get(self, name: str) -> bytes | None:
        await anyio.lowlevel.checkpoint()
        return self.space.objects.get(name)

    async def lines(self, name: str) -> AsyncIterator[bytes]:
        data = self.space.objects.get(name)
        if data is None:
            raise FileNotFoundError(f"{self.locate(name)} does not exist")
        for line in _lines(data):
            await anyio.lowlevel.checkpoint()
            yield line

    async def delete(self, name: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.space.objects.pop(name, None)

    def locate(self, name: str) -> str:
        return f"memory:{self.name}/{name}"

    def _own(self) -> None:
        space = self.space
        if space.owner is not None and space.owner is not self:
            raise JournalBusy(self.describe(), space.holder)
        since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        space.owner = self
        space.holder = f"pid {os.getpid()} on host {socket.gethostname()}, since {since}"

    def _journal(self) -> list[bytes]:
        if self.space.owner is not self or self.space.journal is None:
            raise RuntimeError(f"journal {self.describe()} is not owned by this store")
        return self.space.journal


def _lines(data: bytes) -> list[bytes]:
    """`data` cut after each b"\\n" (a record may hold any other byte)."""
    *whole, rest = data.split(b"\n")
    return [line + b"\n" for line in whole] + ([rest] if rest else [])
