"""Validate a manifest and plan its chunks in one pass (two if it is not grouped by package).

`scan_manifest` reads a manifest once (twice if it is not grouped by package), validates
every row, collapses repeats and plans the chunks (`manifest.chunking`), writing them
for a run as the job's chunk list (`bulkops.journal.chunklist`): the run and its resumes
never read the manifest again. Files are read in `manifest.files`, rows checked in
`manifest.rows`.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkops.errors import ManifestError, ManifestInvalid, UsageError
from bulkops.journal.chunklist import ChunkList, ChunkListWriter
from bulkops.manifest import chunking
from bulkops.manifest.chunking import MAX_DUPLICATE_LINES, Grouped, Planner, Scattered
from bulkops.manifest.files import detect_format, hashed_lines, open_manifest
from bulkops.manifest.rows import ManifestFormat, RowValidator, parse_rows
from bulkops.model import MAX_CHUNK_SIZE, Operation, PackageRef

__all__ = [
    "MAX_DUPLICATE_LINES",
    "MAX_ERRORS",
    "ManifestInvalid",
    "ManifestSummary",
    "scan_manifest",
]

MAX_ERRORS = 20  # rows listed in one ManifestInvalid: enough to fix a file in one go


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """What validating a manifest found, and the chunk list it wrote for a run."""

    path: str
    manifest_format: ManifestFormat
    operation: Operation
    sha256: str
    rows: int  # data rows, blank lines excluded
    targets: int  # unique targets, after collapsing duplicates
    duplicates: int
    duplicate_lines: tuple[int, ...]  # the first MAX_DUPLICATE_LINES of them
    packages: int
    versions: int  # 0 for delete-packages
    chunks: int
    chunk_size: int
    formats: dict[str, int] = field(hash=False)
    revisions_pinned: int
    domain: str | None  # the value the rows' domain column names, if any
    repository: str | None
    chunk_list: ChunkList | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for dry runs and the journal header."""
        return {
            "path": self.path,
            "manifestFormat": self.manifest_format,
            "operation": self.operation.value,
            "sha256": self.sha256,
            "rows": self.rows,
            "targets": self.targets,
            "duplicates": self.duplicates,
            "duplicateLines": list(self.duplicate_lines),
            "packages": self.packages,
            "versions": self.versions,
            "chunks": self.chunks,
            "chunkSize": self.chunk_size,
            "formats": dict(self.formats),
            "revisionsPinned": self.revisions_pinned,
            "domain": self.domain,
            "repository": self.repository,
        }


def scan_manifest(
    path: Path,
    *,
    operation: Operation,
    manifest_format: str | None = None,
    domain: str | None = None,
    repository: str | None = None,
    chunk_size: int = MAX_CHUNK_SIZE,
    chunks_to: ChunkListWriter | None = None,
) -> ManifestSummary:
    """Validate every row and plan the job's chunks; raise one error listing up to 20 bad rows.

    With `chunks_to`, the chunks are written to it as the job's chunk list (see
    `bulkops.journal.chunklist`), which the run and its resumes read instead of the
    manifest; the caller commits it (the summary's `chunk_list` is then None). Blocking:
    async code runs it in a worker thread.
    A manifest grouped by package (as `bulkops plan` and `report --failed-only` write
    them) is read once, holding one package's versions at a time. One that names a
    package again after others is read a second time, its rows spilled to per-package
    buckets on disk first, so memory stays bounded by a bucket whatever the order.
    """
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise UsageError(f"chunk size must be 1..{MAX_CHUNK_SIZE} (got {chunk_size})")
    fmt = detect_format(path, manifest_format)
    scan = _Scan(path, fmt, operation, domain, repository)
    writer = chunks_to
    planner = Planner(str(path), operation, chunk_size, writer)
    try:
        grouped = Grouped(planner)
        scan.run(grouped)
        grouped.finish()
    except Scattered:
        if writer is not None:
            writer.restart()
        planner = Planner(str(path), operation, chunk_size, writer)
        spill_dir = None if writer is None else writer.local_dir
        with tempfile.TemporaryDirectory(prefix=".bulkops-spill-", dir=spill_dir) as tmp:
            buckets = chunking.Buckets(Path(tmp), path.stat().st_size)
            with buckets:
                scan = _Scan(path, fmt, operation, domain, repository)
                scan.run(buckets.add)
            buckets.replay(planner, scan)
    if scan.problems:
        problems = sorted(scan.problems, key=lambda p: p.line or 0)[:MAX_ERRORS]
        raise problems[0] if scan.invalid == 1 else ManifestInvalid(problems, scan.invalid)
    return ManifestSummary(
        path=str(path),
        manifest_format=fmt,
        operation=operation,
        sha256=scan.sha256,
        rows=scan.rows,
        targets=planner.targets,
        duplicates=planner.duplicates,
        duplicate_lines=tuple(sorted(planner.duplicate_lines)[:MAX_DUPLICATE_LINES]),
        packages=planner.packages,
        versions=planner.targets if operation.per_version else 0,
        chunks=planner.chunks,
        chunk_size=chunk_size,
        formats=planner.formats,
        revisions_pinned=planner.pinned,
        domain=scan.expected["domain"],
        repository=scan.expected["repository"],
    )


class _Scan:
    """One validating pass over a manifest: each valid row's target goes to a callback."""

    def __init__(
        self,
        path: Path,
        fmt: ManifestFormat,
        operation: Operation,
        domain: str | None,
        repository: str | None,
    ) -> None:
        self.path, self.fmt, self.operation = path, fmt, operation
        self.check = RowValidator(str(path), operation, domain, repository)
        self.expected = self.check.expected
        self.problems: list[ManifestError] = []
        self.invalid = self.rows = 0
        self.sha256 = ""

    def run(self, on_target: Callable[[int, PackageRef, str | None, str | None], None]) -> None:
        """Validate every row, giving each valid row's line, package, version and revision
        to `on_target`."""
        sha = hashlib.sha256()
        check = self.check.check
        with open_manifest(self.path) as f:
            rows = parse_rows(str(self.path), self.fmt, self.operation, hashed_lines(f, sha))
            count = 0
            for count, (line, row) in enumerate(rows, 1):  # noqa: B007 - counted below
                try:
                    if isinstance(row, ManifestError):
                        raise row
                    on_target(line, *check(line, row))
                except ManifestError as exc:  # keep going: users fix a file in one go
                    self.fail(exc)
            self.rows += count
            sha.update(f.read())  # bytes after a fatal CSV error still belong to the file
        self.sha256 = sha.hexdigest()

    def fail(self, exc: ManifestError) -> None:
        self.invalid += 1
        if len(self.problems) < MAX_ERRORS:
            self.problems.append(exc)
