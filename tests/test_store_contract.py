"""The journal store contract: every store (local files, memory, S3) keeps a job the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from store_factories import FACTORIES, StoreMaker

from bulkops.errors import JournalBusy, NotAJournal, Refused
from bulkops.journal.store import JournalStore
from tests.store_contract import CONTRACT, OpenStore

HEADER = b'{"type":"header"}\n'


@pytest.fixture(params=sorted(FACTORIES))
def store_factory(request: pytest.FixtureRequest, tmp_path: object) -> StoreMaker:
    return FACTORIES[request.param](tmp_path)  # type: ignore[arg-type]


async def lines(store: JournalStore) -> list[bytes]:
    return [line async for line in store.read()]


@pytest.mark.anyio
async def test_create_stores_the_header_and_a_second_create_is_refused(
    store_factory: StoreMaker,
) -> None:
    first = store_factory()
    assert not await first.exists()
    await first.create(HEADER)
    assert await first.exists()
    assert await lines(first) == [HEADER]
    other = store_factory()
    with pytest.raises(Refused, match="already exists") as refused:
        await other.create(b'{"type":"header","other":1}\n')
    assert refused.value.exit_code == 2
    assert await lines(first) == [HEADER]
    await first.release()


@pytest.mark.anyio
async def test_appended_batches_read_back_in_order(store_factory: StoreMaker) -> None:
    store = store_factory()
    await store.create(HEADER)
    await store.append(b"1\n2\n")
    await store.append(b"3\n")
    assert await lines(store) == [HEADER, b"1\n", b"2\n", b"3\n"]
    await store.release()
    assert await lines(store_factory()) == [HEADER, b"1\n", b"2\n", b"3\n"]


@pytest.mark.anyio
async def test_an_owner_excludes_a_second_until_it_releases(store_factory: StoreMaker) -> None:
    owner = store_factory()
    await owner.create(HEADER)
    second = store_factory()
    with pytest.raises(JournalBusy) as busy:
        await second.acquire()
    assert busy.value.exit_code == 75
    assert busy.value.holder
    await owner.release()
    await owner.release()  # idempotent
    await second.acquire()
    await second.append(b"after\n")
    assert owner.owned_until() <= second.owned_until()
    with pytest.raises(JournalBusy):
        await store_factory().acquire()
    await second.release()
    third = store_factory()
    await third.acquire()
    assert await lines(third) == [HEADER, b"after\n"]
    await third.release()


@pytest.mark.anyio
async def test_acquiring_where_no_journal_is_stored_is_not_a_journal(
    store_factory: StoreMaker,
) -> None:
    with pytest.raises(NotAJournal):
        await store_factory().acquire()


@pytest.mark.anyio
async def test_a_torn_tail_is_read_as_such_and_dropped_after_the_intact_lines(
    store_factory: StoreMaker,
) -> None:
    store = store_factory()
    await store.create(HEADER)
    await store.append(b"1\n2\n")
    await store.append(b'{"half')  # what a crash mid-append leaves
    read = await lines(store)
    assert read[-1] == b'{"half' and all(line.endswith(b"\n") for line in read[:-1])
    await store.drop_after(3)
    await store.append(b"3\n")
    assert await lines(store) == [HEADER, b"1\n", b"2\n", b"3\n"]
    await store.release()


@pytest.mark.anyio
async def test_create_only_lets_the_first_writer_win(store_factory: StoreMaker) -> None:
    store = store_factory()
    first, second = store.writer("lease", create_only=True), store.writer("lease", create_only=True)
    first.write(b"first\n")
    second.write(b"second\n")
    await first.commit()
    with pytest.raises(Refused):
        await second.commit()
    assert await store.get("lease") == b"first\n"


@pytest.mark.anyio
async def test_a_large_sibling_streams_its_lines(store_factory: StoreMaker) -> None:
    store = store_factory()
    writer = store.writer("chunks")
    for i in range(50_000):
        writer.write(b"%d\n" % i)
    await writer.commit()
    count = 0
    async for line in store.lines("chunks"):
        assert line == b"%d\n" % count
        count += 1
    assert count == 50_000


@pytest.mark.anyio
async def test_deleted_and_missing_siblings(store_factory: StoreMaker) -> None:
    store = store_factory()
    await store.delete("undo.jsonl")  # nothing there: no error
    writer = store.writer("undo.jsonl")
    writer.write(b"x\n")
    await writer.commit()
    await store.delete("undo.jsonl")
    assert await store.get("undo.jsonl") is None
    with pytest.raises(FileNotFoundError):
        [line async for line in store.lines("undo.jsonl")]


def test_describe_and_locate_say_where_without_secrets(store_factory: StoreMaker) -> None:
    store = store_factory()
    where = [store.describe(), store.locate("chunks"), store.locate("delete.jsonl")]
    assert len(set(where)) == 3
    assert "chunks" in where[1] and "delete.jsonl" in where[2]
    for text in where:
        assert not any(word in text.lower() for word in ("secret", "token", "password", "@"))
    assert store.commit_interval >= 0


@asynccontextmanager
async def _released(store: JournalStore) -> AsyncIterator[JournalStore]:
    try:
        yield store
    finally:
        await store.release()


@pytest.mark.anyio
@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_the_contract_the_s3_store_is_held_to_holds_here_too(
    check: Callable[[OpenStore], Awaitable[None]], store_factory: StoreMaker
) -> None:
    """The checks `tests/test_s3_store.py` runs on S3 (moto's server), on these stores."""
    await check(lambda: _released(store_factory()))
