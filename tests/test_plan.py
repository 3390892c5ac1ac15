"""Chunking: boundaries, interleaving, stable ids, the chunk list, shards and estimates."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from bulkops.errors import ChunkListCorrupt, ManifestError, UsageError
from bulkops.journal.chunklist import CHUNKS, ChunkList, ChunkListWriter, read_chunks
from bulkops.journal.local import LocalFileStore
from bulkops.manifest.estimate import estimate
from bulkops.manifest.files import write_manifest
from bulkops.manifest.scan import ManifestInvalid, scan_manifest
from bulkops.model import Chunk, Operation, PackageRef, Target, chunk_id

DISPOSE = Operation.DISPOSE
WEB = PackageRef("npm", "acme", "web")
CORE = PackageRef("maven", "com.acme", "core")


def versions_of(ref: PackageRef, n: int, start: int = 0) -> list[Target]:
    return [Target(ref, f"1.{i}.0") for i in range(start, start + n)]


def plan(
    tmp_path: Path,
    targets: list[Target],
    operation: Operation = DISPOSE,
    chunk_size: int = 100,
) -> list[Chunk]:
    """The chunks a run would send for a manifest of `targets`, through the chunk list."""
    folder = Path(os.urandom(4).hex())
    (tmp_path / folder).mkdir()
    path = tmp_path / folder / "m.jsonl"
    buf = io.StringIO()
    write_manifest(targets, buf, "jsonl")
    path.write_text(buf.getvalue())
    store = LocalFileStore(tmp_path / folder / "job")
    summary, written = scan_into(store, path, operation=operation, chunk_size=chunk_size)
    got = chunks_of(store, written.sha256)
    assert summary.chunks == written.chunks == len(got)
    return got


def scan_into(store: LocalFileStore, path: Path, **kw: Any) -> tuple[Any, ChunkList]:
    """Scan a manifest writing its chunk list through `store`, as a run's prepare does."""

    async def scan() -> tuple[Any, ChunkList]:
        writer = ChunkListWriter(store)
        try:
            summary = scan_manifest(path, chunks_to=writer, **kw)
            return summary, await writer.commit()
        finally:
            await writer.abort()

    return anyio.run(scan)


def chunks_of(store: LocalFileStore, sha256: str) -> list[Chunk]:
    async def read() -> list[Chunk]:
        return [c async for c in read_chunks(store, CHUNKS, sha256)]

    return anyio.run(read)


@pytest.mark.parametrize(
    ("n", "sizes"),
    [(1, [1]), (99, [99]), (100, [100]), (101, [100, 1]), (250, [100, 100, 50])],
)
def test_a_package_is_cut_into_chunks_of_at_most_100_in_file_order(
    tmp_path: Path, n: int, sizes: list[int]
) -> None:
    got = plan(tmp_path, versions_of(WEB, n))
    assert [len(c.versions) for c in got] == sizes
    assert [v for c in got for v in c.versions] == [f"1.{i}.0" for i in range(n)]
    assert all(c.ref == WEB and c.id == chunk_id(WEB, c.versions) for c in got)


def test_a_smaller_chunk_size_cuts_smaller_chunks(tmp_path: Path) -> None:
    got = plan(tmp_path, versions_of(WEB, 70), chunk_size=30)
    assert [len(c.versions) for c in got] == [30, 30, 10]


def test_interleaved_packages_get_the_chunks_they_get_alone(tmp_path: Path) -> None:
    web, core = versions_of(WEB, 150), versions_of(CORE, 120)
    interleaved = [t for pair in zip(web, core, strict=False) for t in pair] + web[120:]
    got = plan(tmp_path, interleaved)
    alone = plan(tmp_path, web) + plan(tmp_path, core)
    assert sorted((c.id, c.versions) for c in got) == sorted((c.id, c.versions) for c in alone)


def test_chunk_ids_are_stable_across_runs_and_machines(tmp_path: Path) -> None:
    first, again = plan(tmp_path, versions_of(WEB, 250)), plan(tmp_path, versions_of(WEB, 250))
    assert [c.id for c in first] == [c.id for c in again]
    # pinned: a change here re-plans every journal on resume
    assert first[0].id == chunk_id(WEB, tuple(f"1.{i}.0" for i in range(100)))
    assert plan(tmp_path, [Target(WEB, "1.0.0")])[0].id == "4dba7057f3db20d5e173"


def test_a_package_chunk_ids_do_not_depend_on_other_packages_rows(tmp_path: Path) -> None:
    web, core = versions_of(WEB, 130), versions_of(CORE, 97)
    alone = [c.id for c in plan(tmp_path, web)]
    for mixed in (
        core[:7] + web + core[7:],
        web[:60] + core + web[60:],
        [t for pair in zip(core, web, strict=False) for t in pair] + web[97:],
    ):
        assert [c.id for c in plan(tmp_path, mixed) if c.ref == WEB] == alone


def test_revisions_travel_with_their_versions(tmp_path: Path) -> None:
    targets = [Target(WEB, "1", "R1"), Target(WEB, "2"), Target(WEB, "3", "R3")]
    (chunk,) = plan(tmp_path, targets)
    assert chunk.versions == ("1", "2", "3")
    assert chunk.revisions == {"1": "R1", "3": "R3"}


def test_delete_packages_gives_one_chunk_per_package_without_versions(tmp_path: Path) -> None:
    got = plan(tmp_path, [Target(WEB), Target(CORE), Target(WEB)], Operation.DELETE_PACKAGES)
    assert sorted((c.ref.package, c.versions, c.id) for c in got) == [
        ("core", (), chunk_id(CORE, ())),
        ("web", (), chunk_id(WEB, ())),
    ]


class FileAccess:
    """The files this process opens while `watching` (the interpreter's "open" audit event)."""

    def __init__(self) -> None:
        self.opened: list[tuple[Path, str | None]] | None = None
        self.modes: set[int] = set()  # permissions of spilled rows, seen when read back
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple[object, ...]) -> None:
        if event != "open" or self.opened is None or not isinstance(args[0], str | Path):
            return
        path, mode = Path(args[0]), args[1]
        self.opened.append((path, mode if isinstance(mode, str) else None))
        if path.parent.name.startswith(".bulkops-spill-") and mode == "r":
            self.modes.add(stat.S_IMODE(path.stat().st_mode))

    def watching(self, manifest: Path) -> tuple[int, int]:
        """(reads of `manifest`, spill files written) by scanning it into a chunk list."""
        self.opened = []
        try:
            scan_into(LocalFileStore(manifest.with_name("job")), manifest, operation=DISPOSE)
            reads = sum(1 for p, m in self.opened if p == manifest and m == "r")
            spills = {p for p, _ in self.opened if p.parent.name.startswith(".bulkops-spill-")}
        finally:
            self.opened = None
        assert not list(manifest.parent.glob(".bulkops-spill-*")), "spill files left behind"
        return reads, len(spills)


ACCESS = FileAccess()


def test_a_grouped_manifest_is_read_once_and_a_scattered_one_spills_by_package(
    tmp_path: Path,
) -> None:
    grouped_path = tmp_path / "grouped.jsonl"
    with grouped_path.open("w") as f:
        write_manifest(versions_of(WEB, 150) + versions_of(CORE, 150), f, "jsonl")
    assert ACCESS.watching(grouped_path) == (1, 0)
    grouped = plan(tmp_path, versions_of(WEB, 150) + versions_of(CORE, 150))
    assert [(c.ref, len(c.versions)) for c in grouped] == [
        (WEB, 100),
        (WEB, 50),
        (CORE, 100),
        (CORE, 50),
    ]
    web = versions_of(WEB, 150)
    scattered_rows = web[:10] + versions_of(CORE, 150) + web[10:] + web[:3]
    scattered_path = tmp_path / "scattered.jsonl"
    with scattered_path.open("w") as f:
        write_manifest(scattered_rows, f, "jsonl")
    assert ACCESS.watching(scattered_path) == (2, 2)  # read twice, spilled to two buckets
    assert ACCESS.modes == {0o600}  # spilled rows are job state
    scattered = plan(tmp_path, scattered_rows)
    assert sorted(c.id for c in scattered) == sorted(c.id for c in grouped)


def test_a_scattered_manifest_still_reports_duplicates_and_conflicts_by_line(
    tmp_path: Path,
) -> None:
    rows = [
        {"format": "npm", "package": "a", "version": "1", "revision": "R1"},
        {"format": "npm", "package": "b", "version": "1"},
        {"format": "npm", "package": "a", "version": "1", "revision": "R1"},
        {"format": "npm", "package": "a", "version": "1", "revision": "R2"},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ManifestError, match=r":4: field .revision.*also on line 1"):
        scan_into(LocalFileStore(tmp_path / "j"), path, operation=DISPOSE)
    assert not list(tmp_path.glob("*.chunks*")) and not list(tmp_path.glob(".*"))
    del rows[3]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = scan_manifest(path, operation=DISPOSE)
    assert (summary.targets, summary.duplicates, summary.duplicate_lines) == (2, 1, (3,))


def test_the_chunk_list_is_owner_only_and_refused_once_changed(tmp_path: Path) -> None:
    out = tmp_path / "j.chunks"
    store = LocalFileStore(tmp_path / "j")

    async def write() -> ChunkList:
        writer = ChunkListWriter(store)
        writer.add(WEB, ["1", "2"], {"2": "R2"})
        return await writer.commit()

    written = anyio.run(write)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert (written.file, written.chunks) == ("j.chunks", 1)
    (chunk,) = chunks_of(store, written.sha256)
    assert (chunk.ref, chunk.versions, chunk.revisions) == (WEB, ("1", "2"), {"2": "R2"})
    out.write_bytes(out.read_bytes().replace(b'"1"', b'"9"'))
    with pytest.raises(ChunkListCorrupt, match="changed since the job started"):
        chunks_of(store, written.sha256)
    with pytest.raises(ChunkListCorrupt, match="cannot be read"):
        chunks_of(LocalFileStore(tmp_path / "absent"), written.sha256)


def test_an_invalid_manifest_or_chunk_size_leaves_no_chunk_list(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"format":"npm","package":"a","version":"1/2"}\n{"format":"npm"}\n')
    with pytest.raises(ManifestInvalid):
        scan_into(LocalFileStore(tmp_path / "j"), path, operation=DISPOSE)
    with pytest.raises(UsageError, match="chunk size"):
        scan_into(LocalFileStore(tmp_path / "j"), path, operation=DISPOSE, chunk_size=101)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]


def test_scan_counts_the_chunks_the_run_sends(tmp_path: Path) -> None:
    rows = [{"format": "npm", "package": f"p{i % 3}", "version": f"{i}"} for i in range(460)]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = LocalFileStore(tmp_path / "j")
    summary, written = scan_into(store, path, operation=DISPOSE, chunk_size=50)
    got = chunks_of(store, written.sha256)
    assert summary.chunks == len(got) == 3 * 4  # 154/153/153 versions each: 4 chunks of ≤50
    assert sum(len(c.versions) for c in got) == summary.versions == 460
    estimated = estimate(summary, rate=4.0)
    assert (estimated.calls, estimated.seconds) == (12, 3.0)
    with pytest.raises(ValueError, match="rate"):
        estimate(summary, rate=0)
