"""A sharded job seen whole: its shards' stores, and each shard's state for `bulkops status`.

view = await sharded_view("s3://ckpt/jobs/d")    # None: no sharded job there
rows = await shard_statuses(view)                 # one `ShardStatus` per shard
"""

from __future__ import annotations

import time
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bulkops.jobs.sharded import Descriptor, read_descriptor, shard_location
from bulkops.jobs.shards import Shard
from bulkops.journal.location import Checkpoint, open_store
from bulkops.journal.records import iter_records
from bulkops.journal.store import JournalStore
from bulkops.report.stream import totals_of

State = Literal["done", "failed", "unfinished", "not started"]


@dataclass(frozen=True, slots=True)
class ShardedView:
    """A sharded job: its descriptor and each shard's store (started or not)."""

    prefix: Checkpoint
    descriptor: Descriptor
    stores: tuple[JournalStore, ...]

    async def started(self) -> list[JournalStore]:
        """The stores of the shards whose journal exists."""
        return [store for store in self.stores if await store.exists()]


async def sharded_view(prefix: Checkpoint) -> ShardedView | None:
    """The sharded job at `prefix`, or None when none is there."""
    descriptor = await read_descriptor(open_store(prefix))
    if descriptor is None:
        return None
    n = descriptor.shards
    stores = tuple(open_store(shard_location(prefix, Shard(k, n))) for k in range(n))
    return ShardedView(prefix, descriptor, stores)


@dataclass(frozen=True, slots=True)
class ShardStatus:
    """One shard's line of `bulkops status`."""

    index: int
    state: State
    done: int
    pending: int | None  # None: not started (its share is not read)
    failed: int
    holder: str | None  # "pid P on HOST" while a live run holds the lease
    last_record_age: float | None  # seconds since its journal's last record

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard": self.index,
            "state": self.state,
            "done": self.done,
            "pending": self.pending,
            "failed": self.failed,
            "holder": self.holder,
            "lastRecordAgeSeconds": self.last_record_age,
        }


async def shard_status(index: int, store: JournalStore) -> ShardStatus:
    """Shard `index`'s state."""
    if not await store.exists():
        return ShardStatus(index, "not started", 0, None, 0, None, None)
    totals = await totals_of(store)
    pending = sum(totals.pending.values()) + (totals.not_started or 0)
    failed = totals.permanent_failures
    state: State = "unfinished" if pending else "failed" if failed else "done"
    return ShardStatus(
        index, state, totals.succeeded, pending, failed, await _holder(store), await _age(store)
    )


async def shard_statuses(view: ShardedView) -> list[ShardStatus]:
    """Every shard's state, in index order."""
    return [await shard_status(k, store) for k, store in enumerate(view.stores)]


async def _holder(store: JournalStore) -> str | None:
    read = getattr(store, "holder", None)
    doc = None if read is None else await read()
    if not doc or doc.get("released") or float(doc.get("expires", 0)) <= time.time():
        return None
    return f"pid {doc.get('pid')} on {doc.get('host')}"


async def _age(store: JournalStore) -> float | None:
    last = None
    async with aclosing(iter_records(store)) as records:
        async for record in records:
            last = record.get("at", last)
    if not isinstance(last, str):
        return None
    at = datetime.fromisoformat(last.replace("Z", "+00:00"))
    return round(time.time() - at.timestamp(), 1)
