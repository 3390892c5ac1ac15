"""The engine's sink: outcomes and dispatch marks into the journal, group committed.

Workers hand their finished attempts (and the marks a chunk needs before its first send)
to the sink through a bounded stream; the sink waits up to the commit window for more to
share one fsync, writes the batch in a shielded scope, then counts it in the run's stats.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

import anyio
import anyio.lowlevel
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulkops.engine.types import OutcomeWriter, Stats
from bulkops.model import ChunkOutcome

log = structlog.get_logger("bulkops.engine.engine")


@dataclass(frozen=True, slots=True)
class Mark:
    """A worker's request to journal a dispatch mark; `done` is set once it is durable."""

    chunk_id: str
    done: anyio.Event


Out: TypeAlias = "tuple[ChunkOutcome, bool] | Mark"


class Sink:
    """Writes what the workers hand over to `journal`, batching within `window` seconds."""

    def __init__(self, journal: OutcomeWriter, stats: Stats, window: float) -> None:
        self.journal, self.stats, self.window = journal, stats, window
        # set to end the group-commit window: a dispatch mark waits to be written, the
        # stream is full, or the run is draining (born here, inside the loop)
        self.urgent = anyio.Event()
        self.draining = False

    async def emit(self, send: MemoryObjectSendStream[Out], item: Out) -> None:
        """Hand `item` to the sink; a full stream ends its group-commit window at once."""
        await put(send, item, on_full=self.urgent.set)

    async def run(self, receive: MemoryObjectReceiveStream[Out]) -> None:
        window = self.window
        async with receive:
            while True:
                try:
                    batch = [await receive.receive()]
                except anyio.EndOfStream:
                    return
                # from here the batch is in hand: nothing may cancel it before it is written
                with anyio.CancelScope(shield=True):
                    if window > 0 and not self.draining and not isinstance(batch[0], Mark):
                        # group commit: let the outcomes of the next calls share this fsync
                        with anyio.move_on_after(window):
                            await self.urgent.wait()
                    self.urgent = anyio.Event()
                    while len(batch) < 512:
                        try:
                            batch.append(receive.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    outcomes = [b for b in batch if not isinstance(b, Mark)]
                    marks = [b.chunk_id for b in batch if isinstance(b, Mark)]
                    await self.journal.write(outcomes, marks)
                for b in batch:
                    if isinstance(b, Mark):
                        b.done.set()
                    else:
                        self.count(*b)

    def count(self, outcome: ChunkOutcome, complete: bool) -> None:
        s = self.stats
        permanent = outcome.permanent
        s.versions_ok += len(outcome.successful) + len(outcome.settled) + outcome.package_done
        s.versions_failed += len(permanent)
        for v in permanent:
            s.errors[outcome.failed[v].get("errorCode", "?")] += 1
        if complete:
            s.chunks_done += 1
        log.debug(
            "chunk_done",
            package=str(outcome.ref),
            chunk=outcome.chunk_id,
            attempt=outcome.attempt,
            ok=len(outcome.successful) + len(outcome.settled),
            failed=len(permanent),
            retry=len(outcome.retry),
            complete=complete,
        )


T = TypeVar("T")


async def each(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    """The items of either kind of iterable, letting the loop breathe every 64."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
        return
    for i, item in enumerate(items):
        if i % 64 == 0:
            await anyio.lowlevel.checkpoint()
        yield item


async def put(
    send: MemoryObjectSendStream[T], item: T, on_full: Callable[[], None] | None = None
) -> None:
    """Send `item`, without a trip through the event loop when the stream has room;
    `on_full` is told when it has none."""
    try:
        send.send_nowait(item)
    except anyio.WouldBlock:
        if on_full is not None:
            on_full()
        await send.send(item)
