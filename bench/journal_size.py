"""Journal and report at scale: write, recover and report a journal of a million versions.

Writes 10,000 complete chunk records of 100 versions (plus a share of unfinished ones with
--partial), then measures `recover` and every report format: wall time and peak traced
memory (tracemalloc, which slows the run: times are taken on a separate untraced pass).

    python bench/journal_size.py                  # 10,000 x 100 versions
    python bench/journal_size.py --chunks 500     # a quick look
    python bench/journal_size.py --partial 0.1    # 10 % of chunks unfinished (SKIPPED)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from bulkops.journal.journal import JournalHeader, create_journal, recover
from bulkops.journal.location import open_store
from bulkops.model import ChunkOutcome, JobSpec, Operation, PackageRef
from bulkops.report.render import REPORT_FORMATS, render


async def write_journal(path: Path, chunks: int, versions: int, partial: float) -> None:
    spec = JobSpec(Operation.DELETE, "dom", "repo")
    header = JournalHeader.new(
        spec, packages=chunks // 10, versions=chunks * versions, chunks=chunks
    )
    every = max(int(1 / partial), 1) if partial else 0
    async with await create_journal(open_store(path), header) as journal:
        for start in range(0, chunks, 100):
            batch = []
            for i in range(start, min(start + 100, chunks)):
                ref = PackageRef("npm", "scope", f"package-{i // 10}")
                names = [f"{i % 10}.{k}.0" for k in range(versions)]
                ok = {
                    v: {"revision": f"REV{i:08}{k:033}", "status": "Deleted"}
                    for k, v in enumerate(names)
                }
                if every and i % every == 0:
                    skipped = names[-10:]
                    for v in skipped:
                        del ok[v]
                    failed = {
                        v: {"errorCode": "SKIPPED", "errorMessage": "skipped"} for v in skipped
                    }
                    batch.append(
                        (ChunkOutcome(f"{i:020x}", ref, 1, ok, failed, retry=tuple(skipped)), False)
                    )
                else:
                    batch.append((ChunkOutcome(f"{i:020x}", ref, 1, ok), True))
            await journal.write(batch)


def measure(label: str, fn: Callable[[], Any]) -> None:
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{label:<14} {seconds:7.2f} s   peak {peak / 1e6:8.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--partial", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.journal"
        started = time.perf_counter()
        anyio.run(write_journal, path, args.chunks, args.versions, args.partial)
        size = path.stat().st_size
        total = args.chunks * args.versions
        took = time.perf_counter() - started
        print(f"journal        {took:7.2f} s   {size / 1e6:.1f} MB, {total:,} versions")
        store = open_store(path)
        measure("recover", lambda: anyio.run(recover, store))
        # Reports go to /dev/null: a StringIO would count the whole output as report memory.
        with open(os.devnull, "w") as out:
            for fmt in REPORT_FORMATS:
                measure(f"report {fmt}", partial(anyio.run, render, store, fmt, out))
            failed_only = partial(render, store, "csv", out, failed_only=True)
            measure("failed-only csv", partial(anyio.run, failed_only))


if __name__ == "__main__":
    main()
