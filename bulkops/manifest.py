"""Read and validate manifests (JSON Lines or CSV): stream targets, report errors by line and field.

A manifest is read twice: `scan_manifest` validates every row and counts what the job
will do, then `read_targets` streams the same rows to the planner. Neither holds the
rows; duplicate detection keeps 64-bit digests in flat arrays (~16 bytes a target).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import os
import shutil
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO, TypeAlias

from bulkops import apimodel
from bulkops.errors import ManifestChanged, ManifestError, UsageError
from bulkops.model import (
    FORMATS,
    MAX_CHUNK_SIZE,
    NAMESPACE_FORBIDDEN,
    NAMESPACE_REQUIRED,
    Operation,
    PackageRef,
    Target,
)

ManifestFormat: TypeAlias = Literal["csv", "jsonl"]
COLUMNS = ("format", "namespace", "package", "version", "revision")
# rule and status are informational (a plan file's select rule and the status at planning,
# which `report --undo` restores); every operation accepts and ignores them
FIELDS = (*COLUMNS, "domain", "repository", "rule", "status")
MAX_ERRORS = 20  # rows listed in one ManifestInvalid: enough to fix a file in one go
MAX_DUPLICATE_LINES = 10
_FORMAT_NAMES: dict[str, ManifestFormat] = {
    "csv": "csv",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "jsonl",
}
_NAME_RULE = "may not contain '#', '/' or whitespace"
Row: TypeAlias = dict[str, Any]
_JSON_TYPES = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}


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


class _DigestTable:
    """A hash table from nonzero 64-bit digests to unsigned ints, in two flat arrays.

    A set of 64-bit Python ints costs ~70 bytes an entry; this costs 16 bytes a slot
    (12 with 32-bit values) at most 2/3 full: ~34 MB at 1M keys, and no per-key objects.
    """

    def __init__(self, value_type: Literal["I", "Q"] = "Q") -> None:
        self._value_type = value_type
        self._len = 0
        self._alloc(1 << 10)

    def _alloc(self, slots: int) -> None:
        # repeating a one-item array allocates once, with no temporary bytes
        self._keys = array("Q", [0]) * slots
        self._values = array(self._value_type, [0]) * slots
        self._mask = slots - 1
        self._limit = slots * 2 // 3  # linear probing stays short below 2/3 full

    def __len__(self) -> int:
        return self._len

    def _find(self, key: int) -> int:
        """The slot holding `key`, or the free slot where it belongs."""
        keys, mask = self._keys, self._mask
        i = key & mask
        while (k := keys[i]) != key and k:
            i = (i + 1) & mask
        return i

    def setdefault(self, key: int, value: int) -> int | None:
        """The value stored under `key`; stores `value` and returns None if there was none."""
        i = self._find(key)
        if self._keys[i]:
            return self._values[i]
        self._keys[i], self._values[i] = key, value
        self._len += 1
        if self._len > self._limit:
            old = zip(self._keys, self._values, strict=True)
            self._alloc(len(self._keys) * 2)
            for k, v in old:
                if k:
                    j = self._find(k)
                    self._keys[j], self._values[j] = k, v
        return None

    def increment(self, key: int) -> None:
        old = self.setdefault(key, 1)
        if old is not None:
            self._values[self._find(key)] = old + 1

    def get(self, key: int) -> int:
        i = self._find(key)
        return self._values[i] if self._keys[i] else 0

    def values(self) -> Iterator[int]:
        return (v for k, v in zip(self._keys, self._values, strict=True) if k)


def _digest(*parts: str) -> int:
    # "\n" cannot occur inside a namespace, name or version (the API forbids whitespace)
    d = hashlib.blake2b("\n".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(d, "little") or 1  # 0 marks an empty slot


class PackageSizes:
    """How many unique targets each package has: lets the planner close a package early."""

    def __init__(self) -> None:
        self._table = _DigestTable("I")
        self._last: tuple[PackageRef | None, int] = (None, 0)

    def add(self, ref: PackageRef) -> None:
        last, key = self._last
        if ref is not last:  # consecutive rows of a package share one ref: digest it once
            key = _digest(ref.format, ref.namespace or "", ref.package)
            self._last = (ref, key)
        self._table.increment(key)

    def get(self, ref: PackageRef) -> int:
        """The package's target count, 0 if the manifest does not name it."""
        return self._table.get(_digest(ref.format, ref.namespace or "", ref.package))

    def __len__(self) -> int:
        return len(self._table)

    def chunks(self, chunk_size: int) -> int:
        """Calls the job needs: ceil(n / chunk_size) per package."""
        return sum(-(-n // chunk_size) for n in self._table.values())


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
    check = _Validator(str(path), operation, domain, repository)
    dedup = _Dedup(str(path))
    sizes = PackageSizes()
    problems: list[ManifestError] = []
    rows = invalid = targets = duplicates = pinned = 0
    duplicate_lines: list[int] = []
    formats: dict[str, int] = {}
    sha = hashlib.sha256()
    with _open(path) as f:
        for line, row in _rows(str(path), fmt, operation, _hashed_lines(f, sha)):
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
    check = _Validator(str(path), operation, domain, repository)
    dedup = _Dedup(str(path))
    sha = hashlib.sha256()
    with _open(path) as f:
        for line, row in _rows(str(path), fmt, operation, _hashed_lines(f, sha)):
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


def _decode(path: str, number: int, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(path, number, None, f"not UTF-8 (byte {exc.start + 1})") from None
    return text.removeprefix("\ufeff") if number == 1 else text


def _rows(
    path: str, fmt: ManifestFormat, operation: Operation, lines: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, Row | ManifestError]]:
    return _csv_rows(path, operation, lines) if fmt == "csv" else _jsonl_rows(path, lines)


def _jsonl_rows(
    path: str, lines: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, Row | ManifestError]]:
    for number, raw in lines:
        try:
            text = _decode(path, number, raw)
        except ManifestError as exc:
            yield number, exc
            continue
        if not text.strip():
            continue
        array_hint = "; write one JSON object per line (JSON Lines), not a JSON array"
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            hint = array_hint if text.lstrip().startswith("[") else ""
            reason = f"not valid JSON: {exc.msg} at column {exc.colno}{hint}"
            yield number, ManifestError(path, number, None, reason)
            continue
        if not isinstance(obj, dict):
            hint = array_hint if isinstance(obj, list) else ""
            reason = f"expected a JSON object, got {type(obj).__name__}{hint}"
            yield number, ManifestError(path, number, None, reason)
            continue
        yield number, obj


def _csv_rows(
    path: str, operation: Operation, lines: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, Row | ManifestError]]:
    reader = csv.reader((_decode(path, n, raw) for n, raw in lines), strict=True)
    header: list[str] | None = None
    end = 0  # the last physical line consumed: a quoted cell may span lines
    while True:
        line = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except ManifestError as exc:  # undecodable bytes: the reader cannot go on
            yield exc.line, exc
            return
        except csv.Error as exc:
            yield reader.line_num, ManifestError(path, reader.line_num, None, f"bad CSV: {exc}")
            return
        end = reader.line_num
        if not any(cells):
            continue
        if header is None:
            header = _csv_header(path, line, cells, operation)
        elif len(cells) != len(header):
            reason = f"{len(cells)} cells, but the header names {len(header)} columns"
            yield line, ManifestError(path, line, None, reason)
        else:
            yield line, dict(zip(header, cells, strict=True))


def _csv_header(path: str, line: int, cells: list[str], operation: Operation) -> list[str]:
    names = [c.strip().lower() for c in cells]
    if set(names) & set(FORMATS) or not set(names) & set(FIELDS):
        raise ManifestError(
            path, line, None, f"a CSV manifest needs a header row, e.g. {','.join(COLUMNS)}"
        )
    for name in names:
        if name not in FIELDS:
            raise ManifestError(path, line, name, f"unknown column{_did_you_mean(name)}")
        if names.count(name) > 1:
            raise ManifestError(path, line, name, "column named twice")
    for name in (
        ("format", "package", "version") if operation.per_version else ("format", "package")
    ):
        if name not in names:
            raise ManifestError(path, line, name, f"the header has no {name!r} column")
    return names


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, FIELDS, n=1)
    known = f"known fields: {', '.join(FIELDS)}"
    return f" (did you mean {close[0]!r}?); {known}" if close else f"; {known}"


class _Validator:
    """Checks one row at a time against the API's constraints and the job."""

    def __init__(
        self, path: str, operation: Operation, domain: str | None, repository: str | None
    ) -> None:
        self.path, self.operation = path, operation
        self.expected: dict[str, str | None] = {"domain": domain, "repository": repository}
        self._expected_from = {k: "the job's" for k, v in self.expected.items() if v is not None}
        self._pinned: tuple[bool, int] | None = None  # copy: (rows pin revisions, first line)
        self._ref: PackageRef | None = None  # consecutive rows share one PackageRef

    def target(self, line: int, row: Row) -> Target:
        """The row as a Target, or ManifestError naming the first bad field."""
        for name, value in row.items():
            if name not in FIELDS:
                raise ManifestError(self.path, line, name, f"unknown field{_did_you_mean(name)}")
            if value is not None and not isinstance(value, str):
                kind = _JSON_TYPES.get(type(value), type(value).__name__)
                raise self._error(line, name, f"must be a string (got {kind} {value!r})")
        get = row.get  # `or None`: JSON null and empty CSV cells mean absent
        fmt, ns, pkg = get("format") or None, get("namespace") or None, get("package") or None
        ref = self._ref
        if ref is None or ref.package != pkg or ref.namespace != ns or ref.format != fmt:
            ref = self._ref = self._package(line, fmt, ns, pkg)  # once per run of rows
        version, revision = get("version") or None, get("revision") or None
        self._check_version(line, version, revision)
        if "domain" in row or "repository" in row:
            self._check_repository(line, get("domain") or None, get("repository") or None)
        return Target(ref, version, revision)

    def _package(self, line: int, fmt: str | None, ns: str | None, pkg: str | None) -> PackageRef:
        if fmt is None:
            raise self._error(line, "format", "missing")
        if fmt not in FORMATS:
            hint = f"; formats are lower case: {fmt.lower()!r}" if fmt.lower() in FORMATS else ""
            raise self._error(line, "format", f"{fmt!r} is not one of {', '.join(FORMATS)}{hint}")
        if ns is None and fmt in NAMESPACE_REQUIRED:
            what = " (the groupId)" if fmt == "maven" else ""
            raise self._error(line, "namespace", f"{fmt} packages need a namespace{what}")
        if ns is not None:
            if fmt == "npm" and ns.startswith("@"):
                hint = f"npm's namespace is the scope without '@': write {ns[1:]!r}, not {ns!r}"
                raise self._error(line, "namespace", hint)
            if fmt in NAMESPACE_FORBIDDEN:
                raise self._error(line, "namespace", f"{fmt} packages have no namespace ({ns!r})")
            self._shape(line, "namespace", "PackageNamespace", ns)
        if pkg is None:
            raise self._error(line, "package", "missing")
        if fmt == "npm" and pkg.startswith("@") and "/" in pkg:
            scope, name = pkg[1:].split("/", 1)
            hint = f"write a scoped npm package as namespace {scope!r} and package {name!r}"
            raise self._error(line, "package", hint)
        self._shape(line, "package", "PackageName", pkg)
        return PackageRef(fmt, ns, pkg)

    def _check_version(self, line: int, version: str | None, revision: str | None) -> None:
        op = self.operation
        if not op.per_version:
            if version is not None:
                why = "delete-packages deletes whole packages: remove the version, or use delete"
                raise self._error(line, "version", why)
        elif version is None:
            raise self._error(line, "version", f"missing ({op.value} acts on versions)")
        else:
            self._shape(line, "version", "PackageVersion", version)
        if revision is None and op is not Operation.COPY:
            return
        if op is Operation.DELETE:
            why = (
                "DeletePackageVersions cannot pin revisions: use --safe-delete (dispose, "
                "which checks them) or remove the revision"
            )
            raise self._error(line, "revision", why)
        if op is Operation.DELETE_PACKAGES:
            raise self._error(line, "revision", "delete-packages takes no revisions")
        if revision is not None:
            self._shape(line, "revision", "PackageVersionRevision", revision)
        if op is Operation.COPY:  # the API takes versions XOR versionRevisions
            pinned = revision is not None
            if self._pinned is None:
                self._pinned = (pinned, line)
            elif self._pinned[0] != pinned:
                first = f"line {self._pinned[1]} {'has' if self._pinned[0] else 'has none'}"
                why = f"copy takes a revision on every row or on none ({first})"
                raise self._error(line, "revision", why)

    def _check_repository(self, line: int, domain: str | None, repository: str | None) -> None:
        for name, value in (("domain", domain), ("repository", repository)):
            if value is None:
                continue
            want = self.expected[name]
            if want is None:  # the first row that names one sets it for the rest
                self._shape(
                    line, name, "DomainName" if name == "domain" else "RepositoryName", value
                )
                self.expected[name], self._expected_from[name] = value, f"line {line}'s"
            elif value != want:
                what = f"{self._expected_from[name]} {name} {want!r}"
                if name == "repository" and self.operation is Operation.COPY:
                    what += " (for copy, the source repository)"
                raise self._error(line, name, f"{value!r} differs from {what}; one per job")

    def _shape(self, line: int, name: str, shape: str, value: str) -> None:
        why = apimodel.constraint(shape).violation(value)
        if why is not None:
            if "[^#/\\s]" in why:
                why += f": a {name} {_NAME_RULE}"
            raise self._error(line, name, why)

    def _error(self, line: int, name: str, reason: str) -> ManifestError:
        return ManifestError(self.path, line, name, reason)


class _Dedup:
    """Collapses repeated targets (the first wins) and catches conflicting revisions."""

    def __init__(self, path: str) -> None:
        self.path = path
        # digest of (format, namespace, package, version) -> first line << 32 | revision digest
        self._seen = _DigestTable("Q")

    def first(self, line: int, t: Target) -> bool:
        """True for a target's first row, False for a repeat; ManifestError on a conflict."""
        key = _digest(t.ref.format, t.ref.namespace or "", t.ref.package, t.version or "")
        # a 32-bit fingerprint is enough to tell two revisions of one version apart
        revision = 0 if t.revision is None else zlib.crc32(t.revision.encode()) or 1
        earlier = self._seen.setdefault(key, line << 32 | revision)
        if earlier is None:
            return True
        if earlier & 0xFFFFFFFF != revision:
            what = f"version {t.version!r} of {t.ref}"
            reason = f"{what} is also on line {earlier >> 32} with a different revision"
            raise ManifestError(self.path, line, "revision", reason)
        return False
