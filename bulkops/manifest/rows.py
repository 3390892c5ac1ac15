"""Manifest rows: JSON Lines and CSV lines parsed into field maps, each checked into a Target."""

from __future__ import annotations

import csv
import difflib
import json
from collections.abc import Iterator
from typing import Any, Literal, TypeAlias

import orjson

from bulkops.aws import shapes as apimodel
from bulkops.errors import ManifestError
from bulkops.model import (
    FORMATS,
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
_NAME_RULE = "may not contain '#', '/' or whitespace"
Row: TypeAlias = dict[str, Any]
_FIELD_SET = frozenset(FIELDS)
_JSON_TYPES = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}


def _decode(path: str, number: int, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(path, number, None, f"not UTF-8 (byte {exc.start + 1})") from None
    return text.removeprefix("\ufeff") if number == 1 else text


def parse_rows(
    path: str, fmt: ManifestFormat, operation: Operation, lines: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, Row | ManifestError]]:
    """Each data row with its line: a field map, or the ManifestError that row raised."""
    return _csv_rows(path, operation, lines) if fmt == "csv" else _jsonl_rows(path, lines)


def _jsonl_rows(
    path: str, lines: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, Row | ManifestError]]:
    loads = orjson.loads
    for number, raw in lines:
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError:  # blank, a BOM, not UTF-8, or not JSON: say which
            obj = _jsonl_row_slowly(path, number, raw)
            if obj is None:
                continue
        if type(obj) is not dict and not isinstance(obj, ManifestError):
            hint = _ARRAY_HINT if isinstance(obj, list) else ""
            reason = f"expected a JSON object, got {type(obj).__name__}{hint}"
            obj = ManifestError(path, number, None, reason)
        yield number, obj


_ARRAY_HINT = "; write one JSON object per line (JSON Lines), not a JSON array"


def _jsonl_row_slowly(path: str, number: int, raw: bytes) -> Any:
    """A line the fast parser refused: None if blank, else its value or its ManifestError."""
    try:
        text = _decode(path, number, raw)
    except ManifestError as exc:
        return exc
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = _ARRAY_HINT if text.lstrip().startswith("[") else ""
        return ManifestError(
            path, number, None, f"not valid JSON: {exc.msg} at column {exc.colno}{hint}"
        )


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


class RowValidator:
    """Checks one row at a time against the API's constraints and the job."""

    def __init__(
        self, path: str, operation: Operation, domain: str | None, repository: str | None
    ) -> None:
        self.path, self.operation = path, operation
        self.expected: dict[str, str | None] = {"domain": domain, "repository": repository}
        self._expected_from = {k: "the job's" for k, v in self.expected.items() if v is not None}
        self._pinned: tuple[bool, int] | None = None  # copy: (rows pin revisions, first line)
        self._ref: PackageRef | None = None  # consecutive rows share one PackageRef
        version = apimodel.constraint("PackageVersion")
        self._version = version
        self._version_min, self._version_max = version.min or 0, version.max or 1 << 30
        self._version_pattern = version.pattern
        self._per_version = operation.per_version
        # rows of versions without a revision need only the version's shape checked
        self._plain = self._per_version and operation is not Operation.COPY

    def target(self, line: int, row: Row) -> Target:
        """The row as a Target, or ManifestError naming the first bad field."""
        return Target(*self.check(line, row))

    def check(self, line: int, row: Row) -> tuple[PackageRef, str | None, str | None]:
        """The row's package, version and revision, or ManifestError naming the first bad
        field (`target` without building a Target: a manifest scan's hot path)."""
        if not row.keys() <= _FIELD_SET:
            self._check_fields(line, row)
        for value in row.values():
            if value.__class__ is not str and value is not None:
                self._check_fields(line, row)
        get = row.get  # `or None`: JSON null and empty CSV cells mean absent
        fmt, ns, pkg = get("format") or None, get("namespace") or None, get("package") or None
        ref = self._ref
        if ref is None or ref.package != pkg or ref.namespace != ns or ref.format != fmt:
            ref = self._ref = self._package(line, fmt, ns, pkg)  # once per run of rows
        version, revision = get("version") or None, get("revision") or None
        if self._plain and version is not None and revision is None:  # the common row
            if not self._version_min <= len(version) <= self._version_max or (
                self._version_pattern is not None and not self._version_pattern.fullmatch(version)
            ):
                self._shape(line, "version", "PackageVersion", version)
        else:
            self._check_version(line, version, revision)
        if "domain" in row or "repository" in row:
            self._check_repository(line, get("domain") or None, get("repository") or None)
        return ref, version, revision

    def _check_fields(self, line: int, row: Row) -> None:
        """Raise for the row's first unknown field or value that is not a string."""
        for name, value in row.items():
            if name not in _FIELD_SET:
                raise ManifestError(self.path, line, name, f"unknown field{_did_you_mean(name)}")
            if value is not None and not isinstance(value, str):
                kind = _JSON_TYPES.get(type(value), type(value).__name__)
                raise self._error(line, name, f"must be a string (got {kind} {value!r})")

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
        if not self._per_version:
            if version is not None:
                why = "delete-packages deletes whole packages: remove the version, or use delete"
                raise self._error(line, "version", why)
        elif version is None:
            raise self._error(line, "version", f"missing ({op.value} acts on versions)")
        elif self._version.violation(version) is not None:
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
