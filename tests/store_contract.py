"""The journal store contract: what every `JournalStore` must do, as checks over a store factory.

Each check takes `open_store`, a callable returning an async context manager that opens a
fresh handle on one and the same, initially empty, location (two handles stand for two
runs). A test module runs every check of `CONTRACT` against its store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from bulkops.errors import EXIT_INTERRUPTED, EXIT_USAGE, JournalBusy, NotAJournal, Refused
from bulkops.journal.store import JournalStore

OpenStore = Callable[[], AbstractAsyncContextManager[Any]]
HEADER = b'{"kind":"header","version":1}\n'


async def _read(store: JournalStore) -> list[bytes]:
    return [line async for line in store.read()]


async def check_create_makes_a_journal_and_a_second_create_is_refused(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        assert not await store.exists()
        await store.create(HEADER)
        assert await store.exists()
        assert await _read(store) == [HEADER]
        await store.release()
    async with open_store() as other:
        with pytest.raises(Refused) as refused:
            await other.create(HEADER)
        assert refused.value.exit_code == EXIT_USAGE


async def check_appends_read_back_in_order_after_reopening(open_store: OpenStore) -> None:
    batches = [b'{"n":%d}\n{"n":%d}\n' % (i, i + 1) for i in range(0, 20, 2)]
    async with open_store() as store:
        await store.create(HEADER)
        for batch in batches:
            await store.append(batch)
        assert await _read(store) == [HEADER, *(b'{"n":%d}\n' % i for i in range(20))]
    async with open_store() as again:
        await again.acquire()
        assert await _read(again) == [HEADER, *(b'{"n":%d}\n' % i for i in range(20))]
        await again.append(b'{"n":20}\n')
    async with open_store() as third:
        lines = await _read(third)  # a reader that owns nothing sees the same journal
        assert lines[-1] == b'{"n":20}\n' and len(lines) == 22


async def check_an_owned_journal_refuses_a_second_owner_until_released(
    open_store: OpenStore,
) -> None:
    async with open_store() as first:
        await first.create(HEADER)
        assert first.owned_until() > 0
        async with open_store() as second:
            with pytest.raises(JournalBusy) as busy:
                await second.acquire()
            assert busy.value.exit_code == EXIT_INTERRUPTED
            assert "pid" in str(busy.value) and "host" in str(busy.value)
            await first.release()
            await first.release()  # idempotent
            await second.acquire()
            await second.append(b'{"n":1}\n')
            assert await _read(second) == [HEADER, b'{"n":1}\n']


async def check_acquire_of_an_empty_location_is_not_a_journal(open_store: OpenStore) -> None:
    async with open_store() as store:
        with pytest.raises(NotAJournal) as exc:
            await store.acquire()
        assert exc.value.exit_code == EXIT_USAGE


async def check_sibling_objects_commit_abort_and_create_only(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.create(HEADER)
        assert await store.get("chunks") is None
        writer = store.writer("chunks")
        writer.write(b"a\n")
        writer.write(b"b\n")
        assert await store.get("chunks") is None  # nothing is visible before commit
        await writer.commit()
        await writer.abort()  # a no-op after commit
        assert await store.get("chunks") == b"a\nb\n"
        assert [line async for line in store.lines("chunks")] == [b"a\n", b"b\n"]
        dropped = store.writer("undo-Unlisted.jsonl")
        dropped.write(b"x\n")
        await dropped.abort()
        await dropped.abort()
        assert await store.get("undo-Unlisted.jsonl") is None
        left = store.writer("undo-Unlisted.jsonl")
        left.write(b"y\n")
        del left  # leaving without commit drops it too
        assert await store.get("undo-Unlisted.jsonl") is None
        replaced = store.writer("chunks")
        replaced.write(b"c\n")
        await replaced.commit()
        assert await store.get("chunks") == b"c\n"
        first = store.writer("delete.jsonl", create_only=True)
        first.write(b"first\n")
        await first.commit()
        late = store.writer("delete.jsonl", create_only=True)
        late.write(b"second\n")
        with pytest.raises(Refused):
            await late.commit()
        assert await store.get("delete.jsonl") == b"first\n"
        assert store.locate("delete.jsonl") != store.locate("chunks")
        assert "delete.jsonl" in store.locate("delete.jsonl")
        await store.delete("delete.jsonl")
        await store.delete("delete.jsonl")  # no error when there is none
        assert await store.get("delete.jsonl") is None
        with pytest.raises(FileNotFoundError):
            [line async for line in store.lines("delete.jsonl")]


async def check_sibling_objects_are_not_journal_lines(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.create(HEADER)
        writer = store.writer("chunks")
        writer.write(b"not a record\n")
        await writer.commit()
        await store.append(b'{"n":1}\n')
        assert await _read(store) == [HEADER, b'{"n":1}\n']


CONTRACT: list[Callable[[OpenStore], Awaitable[None]]] = [
    check_create_makes_a_journal_and_a_second_create_is_refused,
    check_appends_read_back_in_order_after_reopening,
    check_an_owned_journal_refuses_a_second_owner_until_released,
    check_acquire_of_an_empty_location_is_not_a_journal,
    check_sibling_objects_commit_abort_and_create_only,
    check_sibling_objects_are_not_journal_lines,
]
