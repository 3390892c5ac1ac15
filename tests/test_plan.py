"""Chunking: boundaries, interleaving, stable ids, early flushing, shards and estimates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkops.manifest import read_targets, scan_manifest
from bulkops.model import Chunk, Operation, PackageRef, Target, chunk_id
from bulkops.plan import estimate, make_chunks, shard_of

DISPOSE = Operation.DISPOSE
WEB = PackageRef("npm", "acme", "web")
CORE = PackageRef("maven", "com.acme", "core")


def versions_of(ref: PackageRef, n: int, start: int = 0) -> list[Target]:
    return [Target(ref, f"1.{i}.0") for i in range(start, start + n)]


def chunks(
    targets: list[Target], operation: Operation = DISPOSE, chunk_size: int = 100
) -> list[Chunk]:
    return list(make_chunks(targets, operation=operation, chunk_size=chunk_size))


@pytest.mark.parametrize(
    ("n", "sizes"),
    [(1, [1]), (99, [99]), (100, [100]), (101, [100, 1]), (250, [100, 100, 50])],
)
def test_a_package_is_cut_into_chunks_of_at_most_100_in_file_order(
    n: int, sizes: list[int]
) -> None:
    got = chunks(versions_of(WEB, n))
    assert [len(c.versions) for c in got] == sizes
    assert [v for c in got for v in c.versions] == [f"1.{i}.0" for i in range(n)]
    assert all(c.ref == WEB and c.id == chunk_id(WEB, c.versions) for c in got)


def test_a_smaller_chunk_size_cuts_smaller_chunks() -> None:
    assert [len(c.versions) for c in chunks(versions_of(WEB, 70), chunk_size=30)] == [30, 30, 10]


def test_interleaved_packages_get_the_chunks_they_get_alone() -> None:
    web, core = versions_of(WEB, 150), versions_of(CORE, 120)
    interleaved = [t for pair in zip(web, core, strict=False) for t in pair] + web[120:]
    got = chunks(interleaved)
    assert {c.id for c in got} == {c.id for c in chunks(web)} | {c.id for c in chunks(core)}
    # full chunks as they fill, then partial ones in first-seen package order
    assert [(c.ref, len(c.versions)) for c in got] == [
        (WEB, 100),
        (CORE, 100),
        (WEB, 50),
        (CORE, 20),
    ]


def test_chunk_ids_are_stable_across_runs_and_machines() -> None:
    first, again = chunks(versions_of(WEB, 250)), chunks(versions_of(WEB, 250))
    assert [c.id for c in first] == [c.id for c in again]
    # pinned: a change here re-plans every journal on resume
    assert first[0].id == chunk_id(WEB, tuple(f"1.{i}.0" for i in range(100)))
    assert chunks([Target(WEB, "1.0.0")])[0].id == "4dba7057f3db20d5e173"


def test_a_package_chunk_ids_do_not_depend_on_other_packages_rows() -> None:
    web, core = versions_of(WEB, 130), versions_of(CORE, 97)
    alone = [c.id for c in chunks(web)]
    for mixed in (
        core[:7] + web + core[7:],
        web[:60] + core + web[60:],
        [t for pair in zip(core, web, strict=False) for t in pair] + web[97:],
    ):
        assert [c.id for c in chunks(mixed) if c.ref == WEB] == alone


def test_revisions_travel_with_their_versions() -> None:
    targets = [Target(WEB, "1", "R1"), Target(WEB, "2"), Target(WEB, "3", "R3")]
    (chunk,) = chunks(targets)
    assert chunk.versions == ("1", "2", "3")
    assert chunk.revisions == {"1": "R1", "3": "R3"}


def test_delete_packages_gives_one_chunk_per_package_without_versions() -> None:
    got = chunks([Target(WEB), Target(CORE)], Operation.DELETE_PACKAGES)
    assert [(c.ref, c.versions, c.id) for c in got] == [
        (WEB, (), chunk_id(WEB, ())),
        (CORE, (), chunk_id(CORE, ())),
    ]


def test_package_sizes_let_a_package_close_as_soon_as_its_last_row_is_read() -> None:
    sizes = {WEB: 150, CORE: 150}
    consumed: list[Target] = []

    def stream() -> Iterator[Target]:
        for t in versions_of(WEB, 150) + versions_of(CORE, 150):
            consumed.append(t)
            yield t

    it = make_chunks(stream(), operation=DISPOSE, package_sizes=lambda r: sizes.get(r, 0))
    assert len(next(it).versions) == 100
    second = next(it)
    assert (second.ref, len(second.versions)) == (WEB, 50)
    assert len(consumed) == 150  # WEB's last chunk left before any CORE row was read
    rest = list(it)
    assert [(c.ref, len(c.versions)) for c in rest] == [(CORE, 100), (CORE, 50)]
    without = chunks(versions_of(WEB, 150) + versions_of(CORE, 150))
    assert {c.id for c in [*chunks(versions_of(WEB, 150)), *rest]} == {c.id for c in without}


def test_an_unknown_package_size_falls_back_to_the_end_flush() -> None:
    got = list(make_chunks(versions_of(WEB, 5), operation=DISPOSE, package_sizes=lambda r: 0))
    assert [len(c.versions) for c in got] == [5]


def test_make_chunks_rejects_what_a_valid_manifest_cannot_produce() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        chunks(versions_of(WEB, 1), chunk_size=101)
    with pytest.raises(ValueError, match="chunk_size"):
        chunks(versions_of(WEB, 1), chunk_size=0)
    with pytest.raises(ValueError, match="needs a version"):
        chunks([Target(WEB)])
    with pytest.raises(ValueError, match="given twice"):
        chunks([Target(WEB, "1"), Target(WEB, "1")])
    with pytest.raises(ValueError, match="takes packages"):
        chunks([Target(WEB, "1")], Operation.DELETE_PACKAGES)


def test_shards_split_chunk_ids_by_their_value() -> None:
    ids = [c.id for c in chunks(versions_of(WEB, 1000), chunk_size=1)]
    assert all(shard_of(i, 4) == int(i, 16) % 4 for i in ids)
    assert {shard_of(i, 4) for i in ids} == {0, 1, 2, 3}
    assert {shard_of(i, 1) for i in ids} == {0}
    with pytest.raises(ValueError, match="shard_count"):
        shard_of(ids[0], 0)


def test_scan_counts_the_chunks_make_chunks_emits(tmp_path: Path) -> None:
    rows = [{"format": "npm", "package": f"p{i % 3}", "version": f"{i}"} for i in range(460)]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = scan_manifest(path, operation=DISPOSE, chunk_size=50)
    got = list(
        make_chunks(
            read_targets(path, operation=DISPOSE),
            operation=DISPOSE,
            chunk_size=50,
            package_sizes=summary.package_sizes.get,
        )
    )
    assert summary.chunks == len(got) == 3 * 4  # 154/153/153 versions each: 4 chunks of ≤50
    assert sum(len(c.versions) for c in got) == summary.versions == 460
    plan = estimate(summary, rate=4.0)
    assert (plan.calls, plan.seconds) == (12, 3.0)
    with pytest.raises(ValueError, match="rate"):
        estimate(summary, rate=0)
