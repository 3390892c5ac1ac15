"""Read and validate manifests (JSON Lines or CSV): plan their chunks, report errors by line.

`scan_manifest` reads a manifest once (twice if it is not grouped by package), validates
every row, collapses repeats and plans the chunks, writing them for a run as the job's
chunk list (`bulkops.journal.chunklist`): the run and its resumes never read the manifest
again. Rows are parsed and checked in `manifest_rows`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO

import orjson

from bulkops.errors import ManifestError, UsageError
from bulkops.journal.chunklist import ChunkList, ChunkListWriter
from bulkops.manifest.rows import COLUMNS, FIELDS, ManifestFormat, RowValidator, parse_rows
from bulkops.model import MAX_CHUNK_SIZE, Operation, PackageRef, Target

__all__ = [
    "COLUMNS",
    "FIELDS",
    "MAX_DUPLICATE_LINES",
    "MAX_ERRORS",
    "ManifestFormat",
    "ManifestInvalid",
    "ManifestSummary",
    "detect_format",
    "file_sha256",
    "read_targets",
    "scan_manifest",
    "spool_stdin",
    "write_manifest",
]

MAX_ERRORS = 20  # rows listed in one ManifestInvalid: enough to fix a file in one go
MAX_DUPLICATE_LINES = 10
_FORMAT_NAMES: dict[str, ManifestFormat] = {
    "csv": "csv",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "jsonl",
}


class ManifestInvalid(ManifestError):
    """Several rows failed validation: `problems` holds the first ones, the message lists them."""

    def __init__(self, problems: list[ManifestError], invalid_rows: int) -> None:
        first = problems[0]
        super().__init__(first.path, first.line, first.field, first.reason)
        self.problems = tuple(problems)
        self.invalid_rows = invalid_rows
        lines = [f"{first.path}: {invalid_rows} invalid rows; fix them and run again:"]
        lines += [f"  {p}" for p in problems]
        if invalid_rows > len(problems):
            lines.append(f"  ... and {invalid_rows - len(problems)} more invalid rows")
        self.args = ("\n".join(lines),)


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


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    with _open(path) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def spool_stdin(dest: Path, source: BinaryIO | None = None) -> Path:
    """Copy stdin (or `source`) into a new owner-only (0600) file `dest`, synced to disk.

    The copy is what gets hashed, validated and read again on resume: stdin reads once.
    """
    src = sys.stdin.buffer if source is None else source
    try:
        # O_EXCL: never write through a file or symlink someone else put there
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot spool stdin to {dest}: {exc.strerror}") from exc
    try:
        with open(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # exact mode whatever the umask
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def detect_format(path: Path, manifest_format: str | None = None) -> ManifestFormat:
    """The manifest's format: explicit, else by extension, else by its first byte."""
    if manifest_format is not None:
        if manifest_format.lower() not in _FORMAT_NAMES:
            raise UsageError(f"unknown manifest format {manifest_format!r}: use csv or jsonl")
        return _FORMAT_NAMES[manifest_format.lower()]
    suffix = path.suffix.lower().lstrip(".")
    if suffix in _FORMAT_NAMES:
        return _FORMAT_NAMES[suffix]
    with _open(path) as f:  # e.g. a spooled stdin: JSON Lines start with "{", a CSV header can't
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


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
    planner = _Planner(str(path), operation, chunk_size, writer)
    try:
        grouped = _Grouped(planner)
        scan.run(grouped)
        grouped.finish()
    except _Scattered:
        if writer is not None:
            writer.restart()
        planner = _Planner(str(path), operation, chunk_size, writer)
        spill_dir = None if writer is None else writer.local_dir
        with tempfile.TemporaryDirectory(prefix=".bulkops-spill-", dir=spill_dir) as tmp:
            buckets = _Buckets(Path(tmp), path.stat().st_size)
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


class _Scattered(Exception):
    """The manifest names a package again after other packages: it is not grouped."""


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
        with _open(self.path) as f:
            rows = parse_rows(str(self.path), self.fmt, self.operation, _hashed_lines(f, sha))
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


class _Grouped:
    """A pass's callback for a manifest grouped by package; raises _Scattered if it is not."""

    def __init__(self, planner: _Planner) -> None:
        self.planner = planner
        self.current: PackageRef | None = None
        self.seen: set[int] = set()  # hashes of the packages met: a collision costs a spill

    def __call__(
        self, line: int, ref: PackageRef, version: str | None, revision: str | None
    ) -> None:
        if ref is not self.current:  # consecutive rows of a package share one PackageRef
            key = hash(ref)
            if key in self.seen:
                raise _Scattered
            self.seen.add(key)
            self.finish()
            self.planner.open(ref)
            self.current = ref
        self.planner.add(line, version, revision)

    def finish(self) -> None:
        if self.current is not None:
            self.planner.close()
            self.current = None


class _Buckets:
    """Valid rows spilled to files by package, then replayed one package at a time."""

    def __init__(self, folder: Path, manifest_bytes: int) -> None:
        # ~4 MB of manifest a bucket: one bucket's rows are what a replay holds at once
        self.count = max(2, min(256, manifest_bytes // (4 << 20) + 1))
        self.paths = [folder / f"{i}.jsonl" for i in range(self.count)]
        self._files: list[IO[bytes]] = []

    def __enter__(self) -> _Buckets:
        self._files = [open(p, "xb", opener=_owner_only) for p in self.paths]  # noqa: SIM115
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._files:
            f.close()

    def add(self, line: int, r: PackageRef, version: str | None, revision: str | None) -> None:
        key = f"{r.format}\n{r.namespace or ''}\n{r.package}".encode()
        row = (line, r.format, r.namespace, r.package, version, revision)
        self._files[zlib.crc32(key) % self.count].write(orjson.dumps(row) + b"\n")

    def replay(self, planner: _Planner, scan: _Scan) -> None:
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


def _revision_conflict(
    path: str, line: int, ref: PackageRef | None, version: str | None, earlier: int
) -> ManifestError:
    """A version named again with another revision: which one, and where it came first."""
    reason = f"version {version!r} of {ref} is also on line {earlier} with a different revision"
    return ManifestError(path, line, "revision", reason)


def _owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)  # spilled rows are job state: owner-only


class _Planner:
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
            raise _revision_conflict(self.path, line, self._ref, version, earlier[0])
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


def read_targets(
    path: Path,
    *,
    operation: Operation,
    manifest_format: str | None = None,
    domain: str | None = None,
    repository: str | None = None,
) -> Iterator[Target]:
    """Stream validated targets in file order, repeats skipped, for small manifests.

    Holds every target it has seen: a job reads the chunk list its scan wrote instead.
    """
    fmt = detect_format(path, manifest_format)
    check = RowValidator(str(path), operation, domain, repository)
    seen: dict[tuple[PackageRef, str | None], tuple[int, str | None]] = {}
    with _open(path) as f:
        lines = enumerate(f, 1)
        for line, row in parse_rows(str(path), fmt, operation, lines):
            if isinstance(row, ManifestError):
                raise row
            target = check.target(line, row)
            key = (target.ref, target.version)
            earlier = seen.setdefault(key, (line, target.revision))
            if earlier[0] == line:
                yield target
            elif earlier[1] != target.revision:
                raise _revision_conflict(str(path), line, target.ref, target.version, earlier[0])


def write_manifest(rows: Iterable[Target], out: TextIO, fmt: Literal["csv", "jsonl"]) -> int:
    """Write targets as a manifest `read_targets` accepts; returns the rows written."""
    n = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for t in rows:
            r = t.ref
            writer.writerow(
                (r.format, r.namespace or "", r.package, t.version or "", t.revision or "")
            )
            n += 1
    elif fmt == "jsonl":
        for t in rows:
            values = (t.ref.format, t.ref.namespace, t.ref.package, t.version, t.revision)
            obj = {k: v for k, v in zip(COLUMNS, values, strict=True) if v is not None}
            out.write(json.dumps(obj, separators=(",", ":")) + "\n")
            n += 1
    else:
        raise ValueError(f"unknown manifest format {fmt!r}")
    return n


def _open(path: Path) -> BufferedReader:
    if str(path) == "-":
        raise UsageError("read stdin through spool_stdin() first: it can only be read once")
    try:
        return open(path, "rb")  # the caller closes it
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}") from exc


def _hashed_lines(f: IO[bytes], sha: Any) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(f, 1):
        sha.update(raw)
        yield number, raw
