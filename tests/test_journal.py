"""The journal: durable appends, exact records, torn-tail recovery, corruption, resume state."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from bulkops.errors import JournalBusy, JournalCorrupt, NotAJournal, Refused
from bulkops.journal.journal import (
    Journal,
    JournalHeader,
    LocalFileStore,
    create_journal,
    iter_records,
    open_journal,
    read_header,
    recover,
)
from bulkops.journal.records import encode
from bulkops.model import Chunk, ChunkOutcome, JobSpec, Operation, PackageRef

REF = PackageRef("npm", "scope", "left-pad")
SPEC = JobSpec(Operation.DELETE, "dom", "repo")
CHUNK = Chunk.build(REF, ("1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4"))


def header(spec: JobSpec = SPEC) -> JournalHeader:
    return JournalHeader.new(
        spec,
        manifest_path="m.csv",
        manifest_format="csv",
        manifest_sha256="ab" * 32,
        packages=1,
        versions=5,
        chunks=1,
    )


def ok(*versions: str) -> dict[str, dict[str, str]]:
    return {v: {"revision": f"rev-{v}", "status": "Deleted"} for v in versions}


def fail(code: str, *versions: str) -> dict[str, dict[str, str]]:
    return {v: {"errorCode": code, "errorMessage": f"{code} for {v}"} for v in versions}


def outcome(attempt: int = 1, chunk: Chunk = CHUNK, **fields: object) -> ChunkOutcome:
    return ChunkOutcome(chunk.id, chunk.ref, attempt, **fields)  # type: ignore[arg-type]


async def new_journal(path: Path, spec: JobSpec = SPEC) -> Journal:
    return await create_journal(LocalFileStore(path), header(spec))


async def journal_with(path: Path, *batches: list[tuple[ChunkOutcome, bool]]) -> None:
    async with await new_journal(path) as journal:
        for batch in batches:
            await journal.write(batch)


PARTIAL = outcome(
    1,
    successful=ok("1.0.0", "1.0.1"),
    failed=fail("MISMATCHED_STATUS", "1.0.2") | fail("SKIPPED", "1.0.3", "1.0.4"),
    retry=("1.0.3", "1.0.4"),
)


@pytest.mark.asyncio
async def test_records_round_trip_exactly_as_written(tmp_path: Path) -> None:
    path = tmp_path / "job.journal"
    h = header()
    async with await create_journal(LocalFileStore(path), h) as journal:
        await journal.write([(PARTIAL, False)])
        await journal.event("run_stopped", reason="signal")
    records = [r async for r in iter_records(LocalFileStore(path))]
    assert [r["type"] for r in records] == ["header", "chunk", "event"]
    assert JournalHeader.from_dict(records[0]) == h
    assert records[0]["spec"] == SPEC.to_dict()
    chunk = records[1]
    assert chunk["successfulVersions"] == PARTIAL.successful
    assert chunk["failedVersions"] == PARTIAL.failed
    assert chunk["retry"] == ["1.0.3", "1.0.4"]
    assert (chunk["chunk"], chunk["attempt"], chunk["complete"]) == (CHUNK.id, 1, False)
    assert chunk["ref"] == REF.to_dict()
    assert "deletedPackage" not in chunk
    assert records[2]["kind"] == "run_stopped"
    assert records[2]["data"] == {"reason": "signal"}
    assert (await read_header(LocalFileStore(path))) == h


@pytest.mark.asyncio
async def test_lines_are_compact_json_each_ending_in_newline(tmp_path: Path) -> None:
    path = tmp_path / "j"
    await journal_with(path, [(PARTIAL, False)])
    data = path.read_bytes()
    assert data.endswith(b"\n")
    for line in data.splitlines():
        assert b", " not in line
        assert b'": ' not in line
        json.loads(line)


@pytest.mark.asyncio
async def test_delete_packages_records_carry_the_deleted_package(tmp_path: Path) -> None:
    path = tmp_path / "j"
    summary = {"format": "npm", "namespace": "scope", "package": "left-pad"}
    done = ChunkOutcome("c1", REF, 1, deleted_package=summary, package_done=True)
    await journal_with(path, [(done, True)])
    record = [r async for r in iter_records(LocalFileStore(path))][1]
    assert (record["deletedPackage"], record["packageDone"]) == (summary, True)


@pytest.mark.asyncio
async def test_pinned_revisions_are_kept_only_for_versions_not_done(tmp_path: Path) -> None:
    path = tmp_path / "j"
    pins = {v: f"pin-{v}" for v in CHUNK.versions}
    settled = outcome(
        1,
        successful=ok("1.0.0"),
        failed=fail("NOT_FOUND", "1.0.1") | fail("MISMATCHED_REVISION", "1.0.2"),
        settled={"1.0.1": "already_absent"},
        retry=("1.0.3", "1.0.4"),  # unanswered
        revisions=pins,
    )
    every = outcome(2, error={"errorCode": "X", "errorMessage": ""}, revisions=pins)
    finished = outcome(3, successful=ok(*CHUNK.versions))
    await journal_with(path, [(settled, False), (every, False), (finished, True)])
    records = [r async for r in iter_records(LocalFileStore(path))]
    assert records[1]["revisions"] == {v: pins[v] for v in ("1.0.2", "1.0.3", "1.0.4")}
    assert records[2]["revisions"] == pins
    assert "revisions" not in records[3]


@pytest.mark.asyncio
async def test_journal_is_created_0600_in_a_new_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "job.journal"
    old = os.umask(0)  # the modes must come from os.open/mkdir, not from a friendly umask
    try:
        await journal_with(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.asyncio
async def test_create_refuses_an_existing_journal(tmp_path: Path) -> None:
    path = tmp_path / "j"
    await journal_with(path)
    before = path.read_bytes()
    with pytest.raises(Refused, match="already exists"):
        await new_journal(path)
    assert path.read_bytes() == before


@pytest.mark.asyncio
async def test_a_second_writer_is_refused_while_the_journal_is_open(tmp_path: Path) -> None:
    path = tmp_path / "j"
    async with await new_journal(path):
        with pytest.raises(JournalBusy, match="in use") as caught:
            async with open_journal(LocalFileStore(path)):
                pass
        assert caught.value.exit_code == 75  # retryable: the holder will end
        assert f"pid {os.getpid()} on host {socket.gethostname()}, since 20" in str(caught.value)
        assert stat.S_IMODE((tmp_path / "j.holder").stat().st_mode) == 0o600
    assert not (tmp_path / "j.holder").exists()
    async with open_journal(LocalFileStore(path)) as (_, state):
        assert state.attempts == 0


@pytest.mark.asyncio
async def test_create_fsyncs_the_file_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        kinds.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    journal = await new_journal(tmp_path / "j")
    await journal.close()
    assert kinds == ["file", "dir"]


@pytest.mark.asyncio
async def test_write_returns_after_one_fsync_of_the_whole_batch_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j"
    journal = await new_journal(path)
    seen: list[tuple[int, bool]] = []  # (file size at fsync, called in a worker thread)
    real = os.fsync

    def spy(fd: int) -> None:
        real(fd)
        seen.append(
            (path.stat().st_size, threading.current_thread() is not threading.main_thread())
        )

    monkeypatch.setattr(os, "fsync", spy)
    others = [
        outcome(1, Chunk.build(REF, (f"2.0.{i}",)), successful=ok(f"2.0.{i}")) for i in range(5)
    ]
    await journal.write([(o, True) for o in others])
    assert seen == [(path.stat().st_size, True)]  # one fsync, after every byte, in a thread
    await journal.event("run_started")
    assert len(seen) == 2
    await journal.close()
    assert len((await recover(LocalFileStore(path))).complete) == 5


@pytest.mark.asyncio
async def test_appends_only_grow_the_file_and_never_rewrite_it(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = await new_journal(path)
    inode, previous = path.stat().st_ino, path.read_bytes()
    for attempt in range(1, 4):
        await journal.write([(outcome(attempt, successful=ok("1.0.0")), False)])
        now = path.read_bytes()
        assert now.startswith(previous) and len(now) > len(previous)
        assert path.stat().st_ino == inode
        previous = now
    await journal.close()


@pytest.mark.asyncio
async def test_a_failed_append_stops_further_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = await new_journal(tmp_path / "j")

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="Input/output"):
        await journal.write([(PARTIAL, False)])
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="broken by a failed write"):
        await journal.event("run_stopped")
    await journal.close()


@pytest.mark.asyncio
async def test_events_refuse_keys_that_look_like_secrets(tmp_path: Path) -> None:
    async with await new_journal(tmp_path / "j") as journal:
        with pytest.raises(ValueError, match="never holds secrets"):
            await journal.event("run_started", aws_secret_access_key="x")


@pytest.mark.asyncio
async def test_recover_keeps_complete_chunks_and_final_versions_of_unfinished_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j"
    other = Chunk.build(REF, ("3.0.0",))
    settled = outcome(
        2,
        failed=fail("NOT_FOUND", "1.0.3"),
        settled={"1.0.3": "already_absent"},
    )
    gave_up = outcome(3, error={"errorCode": "InternalServerException", "errorMessage": "500"})
    await journal_with(
        path,
        [(PARTIAL, False), (outcome(1, other, successful=ok("3.0.0")), True)],
        [(settled, False)],
        [(gave_up, False)],
    )
    state = await recover(LocalFileStore(path))
    assert state.is_complete(other.id) and not state.is_complete(CHUNK.id)
    # 1.0.0/1.0.1 succeeded, 1.0.2 failed for good, 1.0.3 was already absent: only 1.0.4 is left
    assert state.pending_versions(CHUNK) == ("1.0.4",)
    assert state.pending_versions(other) == ()
    assert state.last_attempt(CHUNK.id) == 3
    assert state.last_attempt("never-tried") == 0
    assert (state.chunks_complete, state.attempts, state.records) == (1, 4, 5)
    assert state.torn_line is None
    assert state.valid_size == path.stat().st_size


@pytest.mark.asyncio
async def test_pending_versions_of_an_unseen_or_errored_chunk_are_all_in_chunk_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j"
    await journal_with(path, [(outcome(1, error={"errorCode": "X", "errorMessage": ""}), False)])
    state = await recover(LocalFileStore(path))
    assert state.pending_versions(CHUNK) == CHUNK.versions
    assert state.pending_versions(Chunk.build(REF, ("9.9.9",))) == ("9.9.9",)


@pytest.mark.asyncio
async def test_a_resumed_run_continues_attempt_numbering_and_completes_the_chunk(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j"
    await journal_with(path, [(PARTIAL, False)])
    async with open_journal(LocalFileStore(path)) as (journal, state):
        assert journal.header == state.header
        await journal.event("run_resumed")
        pending = state.pending_versions(CHUNK)
        assert pending == ("1.0.3", "1.0.4")
        attempt = state.last_attempt(CHUNK.id) + 1
        await journal.write([(outcome(attempt, successful=ok(*pending)), True)])
    state = await recover(LocalFileStore(path))
    assert state.is_complete(CHUNK.id)
    assert state.pending_versions(CHUNK) == ()
    assert state.last_attempt(CHUNK.id) == 2
    assert state.events == 1


TEARS: dict[str, Callable[[bytes], bytes]] = {
    "mid-record": lambda line: line[: len(line) // 2],
    "missing newline": lambda line: line[:-1],
    "first byte only": lambda line: line[:1],
    "unparsable last line": lambda line: b"\0" * 20 + b"\n",
}


@pytest.mark.parametrize("tear", TEARS.values(), ids=TEARS.keys())
@pytest.mark.asyncio
async def test_torn_last_record_is_dropped_and_cut_away_on_reopen(
    tmp_path: Path, tear: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "j"
    last = outcome(2, successful=ok("1.0.3", "1.0.4"))
    await journal_with(path, [(PARTIAL, False)], [(last, True)])
    lines = path.read_bytes().splitlines(keepends=True)
    intact = b"".join(lines[:-1])
    path.write_bytes(intact + tear(lines[-1]))

    state = await recover(LocalFileStore(path))
    assert (state.torn_line, state.valid_size) == (3, len(intact))
    assert not state.is_complete(CHUNK.id)
    assert state.pending_versions(CHUNK) == ("1.0.3", "1.0.4")
    assert len([r async for r in iter_records(LocalFileStore(path))]) == 2

    async with open_journal(LocalFileStore(path)) as (journal, reopened):
        assert reopened.torn_line == 3
        assert path.read_bytes().startswith(intact)  # cut back to the last intact line
        await journal.write([(last, True)])
    lines = path.read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") for line in lines)
    records = [json.loads(line) for line in lines]
    assert [r.get("kind") for r in records[2:]] == ["torn_tail_dropped", None]
    assert (await recover(LocalFileStore(path))).is_complete(CHUNK.id)


@pytest.mark.asyncio
async def test_damage_in_the_middle_raises_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "j"
    await journal_with(path, [(PARTIAL, False)], [(PARTIAL, False)], [(PARTIAL, False)])
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2][:30] + b"\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt, match="corrupt at line 3") as caught:
        (await recover(LocalFileStore(path)))
    assert (caught.value.path, caught.value.line) == (str(path), 3)
    with pytest.raises(JournalCorrupt):
        async with open_journal(LocalFileStore(path)):
            pass
    assert path.read_bytes() == b"".join(lines)  # a corrupt journal is never "repaired"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "snapshot"}, "unexpected record type 'snapshot'"),
        ({"type": "header"}, "unexpected record type 'header'"),
        ({"type": "chunk", "chunk": "c"}, "without a valid 'ref'"),
        ({"type": "event"}, "event record without a kind"),
        (["not", "an", "object"], "not a JSON object"),
    ],
)
@pytest.mark.asyncio
async def test_records_of_the_wrong_shape_raise(
    tmp_path: Path, record: object, reason: str
) -> None:
    path = tmp_path / "j"
    await journal_with(path)
    with path.open("ab") as f:
        f.write((json.dumps(record) + "\n").encode())
    with pytest.raises(JournalCorrupt, match=reason) as caught:
        (await recover(LocalFileStore(path)))
    assert caught.value.line == 2


def test_a_journal_whose_header_is_torn_is_corrupt_at_line_1(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b'{"type":"head')
    with pytest.raises(JournalCorrupt, match="missing header") as caught:
        anyio.run(recover, LocalFileStore(path))
    assert caught.value.line == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "it is empty"),
        (b"format,namespace,package,version\nnpm,,a,1\n", "b'format,namespace"),
        (b'{"type":"chunk"}\n', "first line is no journal header"),
        (b'{"foo":1}\n', "first line is no journal header"),
    ],
    ids=["empty", "a csv manifest", "chunk first", "foreign json"],
)
def test_a_file_that_is_no_journal_is_a_usage_error_saying_so(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "j"
    path.write_bytes(content)
    with pytest.raises(NotAJournal, match=reason) as caught:
        anyio.run(recover, LocalFileStore(path))
    assert caught.value.exit_code == 2
    assert "is not a bulkops journal" in str(caught.value)


def test_an_unknown_format_version_raises(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(encode({"type": "header", **header().to_dict(), "formatVersion": 99}))
    with pytest.raises(JournalCorrupt, match="unknown format version 99"):
        anyio.run(recover, LocalFileStore(path))


WRITER = """
import sys, anyio
from bulkops.journal.journal import JournalHeader, LocalFileStore, create_journal
from bulkops.model import ChunkOutcome, JobSpec, Operation, PackageRef

async def main(path):
    ref = PackageRef("npm", None, "p")
    header = JournalHeader.new(JobSpec(Operation.DELETE, "d", "r"))
    journal = await create_journal(LocalFileStore(path), header)
    for i in range(10**6):
        ok = {f"{i}.{v}": {"revision": "r" * 40, "status": "Deleted"} for v in range(100)}
        await journal.write([(ChunkOutcome(f"c{i}", ref, 1, ok), True)] * 20)
        if i % 5 == 0:
            print(i, flush=True)  # the parent kills after a few of these

anyio.run(main, sys.argv[1])
"""


def test_a_journal_killed_mid_write_recovers_and_appends_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "j"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        for _ in range(3):
            child.stdout.readline()
    finally:
        child.kill()  # SIGKILL: no cleanup, at any point of a write or an fsync
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    state = anyio.run(recover, LocalFileStore(path))
    assert state.attempts >= 10 * 20
    size = path.stat().st_size
    assert state.valid_size == size if state.torn_line is None else state.valid_size < size

    async def reopen_and_append() -> None:
        async with open_journal(LocalFileStore(path)) as (journal, _):
            await journal.event("run_resumed")

    anyio.run(reopen_and_append)
    data = path.read_bytes()
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.splitlines()]  # every line intact
    assert records[-1]["kind"] == "run_resumed"
    assert anyio.run(recover, LocalFileStore(path)).attempts == state.attempts


def test_recover_memory_follows_chunks_not_versions(tmp_path: Path) -> None:
    """1,000 complete chunks of 100 versions: recovery holds ids, never the versions."""
    path = tmp_path / "j"
    store = LocalFileStore(path)
    anyio.run(store.create, encode({"type": "header", **header().to_dict()}))
    revision = {"revision": "r" * 40, "status": "Deleted"}
    for i in range(10):
        batch = b"".join(
            encode(
                {
                    "type": "chunk",
                    "at": "t",
                    "chunk": f"{i:04}{c:016}",
                    "ref": REF.to_dict(),
                    "attempt": 1,
                    "complete": True,
                    "successfulVersions": {f"{i}.{c}.{v}": revision for v in range(100)},
                    "failedVersions": {},
                    "settled": {},
                    "retry": [],
                    "error": None,
                }
            )
            for c in range(100)
        )
        anyio.run(store.append, batch)
    anyio.run(store.release)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        state = anyio.run(recover, LocalFileStore(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert state.chunks_complete == 1000
    assert peak < 2_000_000  # 100,000 versions as Python objects would take ~30 MB
    assert time.perf_counter() - started < 10
