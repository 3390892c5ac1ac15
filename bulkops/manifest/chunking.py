"""Chunking: a manifest's valid rows, package by package, into chunks of at most 100 versions.

A manifest grouped by package goes straight to the `Planner` (`Grouped` notices when it
is not); one that is not is spilled to owner-only per-package `Buckets` and replayed.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from bulkops.errors import ManifestError
from bulkops.journal.chunklist import ChunkListWriter
from bulkops.manifest.files import revision_conflict
from bulkops.model import Operation, PackageRef

MAX_DUPLICATE_LINES = 10


class Failures(Protocol):
    """Where a replay reports a row that fails: the scan that spilled it."""

    def fail(self, exc: ManifestError) -> None: ...


class Scattered(Exception):
    """The manifest names a package again after other packages: it is not grouped."""


class Grouped:
    """A pass's callback for a manifest grouped by package; raises Scattered if it is not."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self.current: PackageRef | None = None
        self.seen: set[int] = set()  # hashes of the packages met: a collision costs a spill

    def __call__(
        self, line: int, ref: PackageRef, version: str | None, revision: str | None
    ) -> None:
        if ref is not self.current:  # consecutive rows of a package share one PackageRef
            key = hash(ref)
            if key in self.seen:
                raise Scattered
            self.seen.add(key)
            self.finish()
            self.planner.open(ref)
            self.current = ref
        self.planner.add(line, version, revision)

    def finish(self) -> None:
        if self.current is not None:
            self.planner.close()
            self.current = None


class Buckets:
    """Valid rows spilled to files by package, then replayed one package at a time."""

    def __init__(self, folder: Path, manifest_bytes: int) -> None:
        # ~4 MB of manifest a bucket: one bucket's rows are what a replay holds at once
        self.count = max(2, min(256, manifest_bytes // (4 << 20) + 1))
        self.paths = [folder / f"{i}.jsonl" for i in range(self.count)]
        self._files: list[IO[bytes]] = []

    def __enter__(self) -> Buckets:
        self._files = [open(p, "xb", opener=owner_only) for p in self.paths]  # noqa: SIM115
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._files:
            f.close()

    def add(self, line: int, r: PackageRef, version: str | None, revision: str | None) -> None:
        key = f"{r.format}\n{r.namespace or ''}\n{r.package}".encode()
        row = (line, r.format, r.namespace, r.package, version, revision)
        self._files[zlib.crc32(key) % self.count].write(orjson.dumps(row) + b"\n")

    def replay(self, planner: Planner, scan: Failures) -> None:
        """Each bucket's packages to the planner in first-seen order, rows in line order."""
        for path in self.paths:
            packages: dict[tuple[str, str | None, str], list[tuple[int, Any, Any]]] = {}
            with open(path, "rb") as f:
                for raw in f:
                    line, fmt, ns, pkg, version, revision = orjson.loads(raw)
                    packages.setdefault((fmt, ns, pkg), []).append((line, version, revision))
            path.unlink()
            for (fmt, ns, pkg), rows in packages.items():
                planner.open(PackageRef(fmt, ns, pkg))
                for line, version, revision in rows:
                    try:
                        planner.add(line, version, revision)
                    except ManifestError as exc:
                        scan.fail(exc)
                planner.close()


def owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)  # spilled rows are job state: owner-only


class Planner:
    """One package's unique targets at a time, into chunks: counted, and written if asked.

    A package's k-th chunk holds its unique versions k*size..(k+1)*size-1 in manifest
    order, the first row of a repeated version winning: the chunks, and so their ids,
    depend only on that package's own rows.
    """

    def __init__(
        self, path: str, operation: Operation, chunk_size: int, writer: ChunkListWriter | None
    ) -> None:
        self.path, self.per_version = path, operation.per_version
        self.chunk_size, self.writer = chunk_size, writer
        self.targets = self.duplicates = self.packages = self.chunks = self.pinned = 0
        self.duplicate_lines: list[int] = []
        self.formats: dict[str, int] = {}
        self._ref: PackageRef | None = None
        self._rows: dict[str | None, tuple[int, str | None]] = {}  # version -> line, revision

    def open(self, ref: PackageRef) -> None:
        self._ref, self._rows = ref, {}

    def add(self, line: int, version: str | None, revision: str | None) -> None:
        earlier = self._rows.get(version)
        if earlier is None:
            self._rows[version] = (line, revision)
            return
        if earlier[1] != revision:
            raise revision_conflict(self.path, line, self._ref, version, earlier[0])
        self.duplicates += 1
        lines = self.duplicate_lines
        lines.append(line)
        if len(lines) > 4 * MAX_DUPLICATE_LINES:  # keep the first ones by line number
            lines.sort()
            del lines[MAX_DUPLICATE_LINES:]

    def close(self) -> None:
        ref, rows = self._ref, self._rows
        assert ref is not None
        self._ref, self._rows = None, {}
        n = len(rows)
        self.targets += n
        self.packages += 1
        self.formats[ref.format] = self.formats.get(ref.format, 0) + n
        revisions = {v: r for v, (_, r) in rows.items() if r is not None and v is not None}
        self.pinned += len(revisions)
        if not self.per_version:
            self.chunks += 1
            if self.writer is not None:
                self.writer.add(ref, (), {})
            return
        versions = [v for v in rows if v is not None]
        size = self.chunk_size
        for k in range(0, n, size):
            self.chunks += 1
            if self.writer is not None:
                part = versions[k : k + size]
                pins = {v: revisions[v] for v in part if v in revisions} if revisions else {}
                self.writer.add(ref, part, pins)
