"""Manifest files: their format, their digest, stdin spooled, targets read and written.

A manifest is JSON Lines or CSV (by `--manifest-format`, its extension, or its first
byte); rows are parsed and checked in `manifest.rows`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from io import BufferedReader
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO

from bulkops.errors import ManifestError, Refused, UsageError
from bulkops.journal.atomic import PrivateFile
from bulkops.manifest.rows import COLUMNS, ManifestFormat, RowValidator, parse_rows
from bulkops.model import Operation, PackageRef, Target

_FORMAT_NAMES: dict[str, ManifestFormat] = {
    "csv": "csv",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "jsonl",
}


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    with open_manifest(path) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def spool_stdin(dest: Path, source: BinaryIO | None = None) -> Path:
    """Copy stdin (or `source`) into a new owner-only (0600) file `dest`, synced to disk.

    The copy is what gets hashed, validated and read again on resume: stdin reads once.
    """
    src = sys.stdin.buffer if source is None else source
    if dest.exists():  # refused before stdin is read; the link at commit still refuses
        raise UsageError(f"cannot spool stdin to {dest}: it already exists")
    out = PrivateFile(dest, create_only=True)  # never over a file someone else put there
    try:
        while block := src.read(1 << 20):
            out.write(block)
        out.commit()
    except Refused as exc:
        raise UsageError(f"cannot spool stdin to {dest}: it already exists") from exc
    except OSError as exc:
        raise UsageError(f"cannot spool stdin to {dest}: {exc.strerror or exc}") from exc
    finally:
        out.abort()
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
    with open_manifest(
        path
    ) as f:  # e.g. a spooled stdin: JSON Lines start with "{", a CSV header can't
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


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
    with open_manifest(path) as f:
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
                raise revision_conflict(str(path), line, target.ref, target.version, earlier[0])


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


def revision_conflict(
    path: str, line: int, ref: PackageRef | None, version: str | None, earlier: int
) -> ManifestError:
    """A version named again with another revision: which one, and where it came first."""
    reason = f"version {version!r} of {ref} is also on line {earlier} with a different revision"
    return ManifestError(path, line, "revision", reason)


def open_manifest(path: Path) -> BufferedReader:
    """The manifest file, opened for reading; the caller closes it."""
    if str(path) == "-":
        raise UsageError("read stdin through spool_stdin() first: it can only be read once")
    try:
        return open(path, "rb")  # the caller closes it
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}") from exc


def hashed_lines(f: IO[bytes], sha: Any) -> Iterator[tuple[int, bytes]]:
    """Numbered lines of `f`, each also fed to `sha`."""
    for number, raw in enumerate(f, 1):
        sha.update(raw)
        yield number, raw
