"""Read and validate manifests (JSON Lines or CSV): stream targets, report errors by line and field.

A manifest is read twice: `scan_manifest` validates every row and counts what the job
will do, then `read_targets` streams the same rows to the planner. Neither holds the
rows; duplicate detection keeps 64-bit digests in flat arrays (~16 bytes a target).
Rows are parsed and checked in `manifest_rows`; the digest tables live in `digests`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO

from bulkops.digests import Dedup, PackageSizes
from bulkops.errors import ManifestChanged, ManifestError, UsageError
from bulkops.manifest_rows import COLUMNS, FIELDS, ManifestFormat, RowValidator, parse_rows
from bulkops.model import MAX_CHUNK_SIZE, Operation, Target

__all__ = [
    "COLUMNS",
    "FIELDS",
    "MAX_DUPLICATE_LINES",
    "MAX_ERRORS",
    "ManifestFormat",
    "ManifestInvalid",
    "ManifestSummary",
    "PackageSizes",
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
    """What one validation pass found; `package_sizes` feeds `plan.make_chunks`."""

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
    package_sizes: PackageSizes = field(repr=False, compare=False, hash=False)

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
) -> ManifestSummary:
    """Validate every row and count the job; raise one error listing up to 20 bad rows."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise UsageError(f"chunk size must be 1..{MAX_CHUNK_SIZE} (got {chunk_size})")
    fmt = detect_format(path, manifest_format)
    check = RowValidator(str(path), operation, domain, repository)
    dedup = Dedup(str(path))
    sizes = PackageSizes()
    problems: list[ManifestError] = []
    rows = invalid = targets = duplicates = pinned = 0
    duplicate_lines: list[int] = []
    formats: dict[str, int] = {}
    sha = hashlib.sha256()
    with _open(path) as f:
        for line, row in parse_rows(str(path), fmt, operation, _hashed_lines(f, sha)):
            rows += 1
            try:
                if isinstance(row, ManifestError):
                    raise row
                target = check.target(line, row)
                if not dedup.first(line, target):
                    duplicates += 1
                    if len(duplicate_lines) < MAX_DUPLICATE_LINES:
                        duplicate_lines.append(line)
                    continue
            except ManifestError as exc:  # keep going: users fix a file in one go
                invalid += 1
                if len(problems) < MAX_ERRORS:
                    problems.append(exc)
                continue
            targets += 1
            sizes.add(target.ref)
            formats[target.ref.format] = formats.get(target.ref.format, 0) + 1
            pinned += target.revision is not None
        sha.update(f.read())  # bytes after a fatal CSV error still belong to the file
    if problems:
        raise problems[0] if invalid == 1 else ManifestInvalid(problems, invalid)
    return ManifestSummary(
        path=str(path),
        manifest_format=fmt,
        operation=operation,
        sha256=sha.hexdigest(),
        rows=rows,
        targets=targets,
        duplicates=duplicates,
        duplicate_lines=tuple(duplicate_lines),
        packages=len(sizes),
        versions=targets if operation.per_version else 0,
        chunks=sizes.chunks(chunk_size),
        chunk_size=chunk_size,
        formats=formats,
        revisions_pinned=pinned,
        domain=check.expected["domain"],
        repository=check.expected["repository"],
        package_sizes=sizes,
    )


def read_targets(
    path: Path,
    *,
    operation: Operation,
    manifest_format: str | None = None,
    domain: str | None = None,
    repository: str | None = None,
    expected_sha256: str | None = None,
) -> Iterator[Target]:
    """Stream validated targets in file order, duplicates skipped.

    Rows are validated again (a changed file raises ManifestError, never sends garbage);
    with `expected_sha256`, a file whose bytes changed raises ManifestChanged at its end.
    """
    fmt = detect_format(path, manifest_format)
    check = RowValidator(str(path), operation, domain, repository)
    dedup = Dedup(str(path))
    sha = hashlib.sha256()
    with _open(path) as f:
        for line, row in parse_rows(str(path), fmt, operation, _hashed_lines(f, sha)):
            if isinstance(row, ManifestError):
                raise row
            target = check.target(line, row)
            if dedup.first(line, target):
                yield target
        sha.update(f.read())
    if expected_sha256 is not None and sha.hexdigest() != expected_sha256:
        raise ManifestChanged(f"{path} changed while it was read (sha256 {sha.hexdigest()})")


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
