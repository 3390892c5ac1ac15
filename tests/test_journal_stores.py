"""Where a job is kept: locations made into stores, a local job's files, a journal in memory."""

from __future__ import annotations

import stat
from pathlib import Path

import anyio
import pytest

from bulkops.errors import UsageError
from bulkops.journal.journal import JournalHeader, create_journal, open_journal, recover
from bulkops.journal.local import LocalFileStore
from bulkops.journal.location import open_store
from bulkops.journal.memory import MemorySpace, MemoryStore
from bulkops.journal.store import JournalStore
from bulkops.model import Chunk, ChunkOutcome, JobSpec, Operation, PackageRef

SPEC = JobSpec(Operation.DELETE, "dom", "repo")
CHUNK = Chunk.build(PackageRef("npm", None, "web"), ("1", "2"))
DONE = ChunkOutcome(CHUNK.id, CHUNK.ref, 1, successful={"1": {}, "2": {}})


def test_a_path_or_a_file_url_is_a_local_store_and_another_scheme_is_refused(
    tmp_path: Path,
) -> None:
    for location in (tmp_path / "cp.journal", str(tmp_path / "cp.journal")):
        store = open_store(location)
        assert isinstance(store, LocalFileStore)
        assert store.path == tmp_path / "cp.journal"
    url = open_store(f"file://{tmp_path}/cp.journal")
    assert isinstance(url, LocalFileStore) and url.path == tmp_path / "cp.journal"
    with pytest.raises(UsageError, match="unknown scheme 'gs'") as refused:
        open_store("gs://bucket/jobs/cp")
    assert refused.value.exit_code == 2


def test_a_local_jobs_siblings_are_todays_files_beside_the_checkpoint(tmp_path: Path) -> None:
    cp = tmp_path / "jobs" / "cp.journal"
    store = LocalFileStore(cp)
    assert store.locate("chunks") == f"{cp}.chunks"
    assert store.locate("delete.jsonl") == f"{cp}.delete.jsonl"
    assert store.locate("undo-Unlisted.jsonl") == f"{cp}.undo-Unlisted.jsonl"
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError, match="not a sibling"):
            store.locate(bad)

    async def write() -> None:
        out = store.writer("undo.jsonl")
        out.write(b"row\n")
        await out.commit()

    anyio.run(write)
    written = Path(f"{cp}.undo.jsonl")
    assert written.read_bytes() == b"row\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(cp.parent.stat().st_mode) == 0o700  # made by the first write
    assert sorted(p.name for p in cp.parent.iterdir()) == [written.name]  # no temporary left


@pytest.mark.anyio
async def test_a_journal_in_memory_drops_a_torn_tail_on_reopen_as_a_file_does() -> None:
    space = MemorySpace()
    store: JournalStore = MemoryStore(space)
    async with await create_journal(store, JournalHeader.new(SPEC, chunks=1)) as journal:
        await journal.write([(DONE, True)])
    space.tear(b'{"type":"chunk","at":')  # the run died in the middle of an append
    torn = await recover(MemoryStore(space))
    assert torn.torn_line == 3 and torn.is_complete(CHUNK.id)
    async with open_journal(MemoryStore(space)) as (journal, state):
        assert state.torn_line == 3
        await journal.event("resumed")
    after = await recover(MemoryStore(space))
    assert after.torn_line is None
    assert (after.records, after.events) == (4, 2)  # header, chunk, torn_tail_dropped, resumed
