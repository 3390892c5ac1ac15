"""Manifest reading: formats, every validation rule with its line and field, duplicates, I/O."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path
from typing import Literal

import pytest

from bulkops.errors import ManifestError, UsageError
from bulkops.manifest.files import (
    detect_format,
    file_sha256,
    read_targets,
    spool_stdin,
    write_manifest,
)
from bulkops.manifest.scan import MAX_ERRORS, ManifestInvalid, scan_manifest
from bulkops.model import Operation, PackageRef, Target

DISPOSE = Operation.DISPOSE
GOOD = {"format": "npm", "namespace": "acme", "package": "web", "version": "1.0.0"}


def jsonl(tmp_path: Path, *rows: dict[str, object] | str, name: str = "m.jsonl") -> Path:
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def csv_file(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def targets(path: Path, operation: Operation = DISPOSE, **kw: str | None) -> list[Target]:
    return list(read_targets(path, operation=operation, **kw))


# --- happy paths ---------------------------------------------------------------------------


def test_jsonl_rows_become_targets_in_file_order_with_blank_lines_skipped_and_null_absent(
    tmp_path: Path,
) -> None:
    path = jsonl(
        tmp_path,
        GOOD,
        "",
        {"format": "pypi", "namespace": None, "package": "requests", "version": "2.0"},
        {**GOOD, "version": "1.0.1", "revision": "REV1"},
    )
    assert targets(path) == [
        Target(PackageRef("npm", "acme", "web"), "1.0.0"),
        Target(PackageRef("pypi", None, "requests"), "2.0"),
        Target(PackageRef("npm", "acme", "web"), "1.0.1", "REV1"),
    ]
    summary = scan_manifest(path, operation=DISPOSE)
    assert (summary.rows, summary.targets, summary.packages, summary.versions) == (3, 3, 2, 3)
    assert summary.formats == {"npm": 2, "pypi": 1}
    assert summary.revisions_pinned == 1
    assert summary.chunks == 2
    assert summary.manifest_format == "jsonl"


def test_csv_needs_only_a_header_and_empty_cells_mean_absent(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "\ufeffFormat,namespace,package,version,revision\r\n"  # Excel: BOM, capitals, CRLF
        "maven,com.acme,core,1.0,\r\n"
        "\r\n"
        "pypi,,requests,2.0,R2\r\n",
    )
    assert targets(path) == [
        Target(PackageRef("maven", "com.acme", "core"), "1.0"),
        Target(PackageRef("pypi", None, "requests"), "2.0", "R2"),
    ]
    assert scan_manifest(path, operation=DISPOSE).rows == 2


def test_consecutive_rows_of_a_package_share_one_ref_object(tmp_path: Path) -> None:
    path = jsonl(tmp_path, GOOD, {**GOOD, "version": "2"})
    first, second = targets(path)
    assert first.ref is second.ref


def test_format_comes_from_argument_then_extension_then_first_byte(tmp_path: Path) -> None:
    assert detect_format(tmp_path / "a.ndjson") == "jsonl"
    assert detect_format(tmp_path / "a.json") == "jsonl"
    assert detect_format(tmp_path / "a.CSV") == "csv"
    assert detect_format(tmp_path / "a.jsonl", "csv") == "csv"
    spooled = jsonl(tmp_path, GOOD, name="stdin.spool")
    assert detect_format(spooled) == "jsonl"
    assert detect_format(csv_file(tmp_path, "format,package\n", name="x.txt")) == "csv"
    with pytest.raises(UsageError, match="use csv or jsonl"):
        detect_format(spooled, "xml")


def test_stdin_and_missing_files_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="spool_stdin"):
        scan_manifest(Path("-"), operation=DISPOSE, manifest_format="csv")
    with pytest.raises(UsageError, match="cannot read manifest"):
        scan_manifest(tmp_path / "absent.csv", operation=DISPOSE)


def test_domain_and_repository_columns_equal_to_the_job_are_accepted(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {**GOOD, "domain": "corp", "repository": "main"})
    summary = scan_manifest(path, operation=DISPOSE, domain="corp", repository="main")
    assert (summary.domain, summary.repository) == ("corp", "main")
    assert len(targets(path, domain="corp", repository="main")) == 1


def test_without_a_job_repository_the_rows_must_name_the_same_one(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {**GOOD, "repository": "main"}, {**GOOD, "version": "2"})
    assert scan_manifest(path, operation=DISPOSE).repository == "main"
    path = jsonl(tmp_path, {**GOOD, "repository": "main"}, {**GOOD, "repository": "other"})
    with pytest.raises(ManifestError, match="'other' differs from line 1's repository 'main'"):
        scan_manifest(path, operation=DISPOSE)


# --- validation rules ----------------------------------------------------------------------

NPM = {"format": "npm", "package": "web", "version": "1.0"}


@pytest.mark.parametrize(
    ("row", "operation", "field", "fragment"),
    [
        ({**NPM, "format": "NPM"}, DISPOSE, "format", "formats are lower case: 'npm'"),
        ({"package": "web", "version": "1"}, DISPOSE, "format", "missing"),
        ({**NPM, "format": "maven"}, DISPOSE, "namespace", "need a namespace (the groupId)"),
        ({**NPM, "format": "swift"}, DISPOSE, "namespace", "swift packages need a namespace"),
        ({**NPM, "format": "pypi", "namespace": "x"}, DISPOSE, "namespace", "have no namespace"),
        ({**NPM, "namespace": "@acme"}, DISPOSE, "namespace", "write 'acme', not '@acme'"),
        ({**NPM, "package": "@acme/web"}, DISPOSE, "package", "namespace 'acme' and package 'web'"),
        ({**NPM, "package": "a" * 256}, DISPOSE, "package", "at most 255 characters"),
        ({"format": "npm", "version": "1"}, DISPOSE, "package", "missing"),
        ({**NPM, "version": "1.0 beta"}, DISPOSE, "version", "may not contain '#', '/' or white"),
        ({**NPM, "version": "1.0/2"}, DISPOSE, "version", "may not contain '#', '/' or white"),
        ({**NPM, "version": 1.0}, DISPOSE, "version", "must be a string (got number 1.0)"),
        ({"format": "npm", "package": "web"}, DISPOSE, "version", "missing (dispose acts on"),
        (NPM, Operation.DELETE_PACKAGES, "version", "deletes whole packages"),
        ({**NPM, "revision": "r" * 51}, DISPOSE, "revision", "at most 50 characters"),
        ({**NPM, "revision": "R1"}, Operation.DELETE, "revision", "use --safe-delete"),
        ({**NPM, "pakage": "web"}, DISPOSE, "pakage", "unknown field (did you mean 'package'?)"),
        ({**NPM, "domain": "other"}, DISPOSE, "domain", "'other' differs from the job's domain"),
        ({**NPM, "repository": "x"}, Operation.COPY, "repository", "for copy, the source"),
    ],
)
def test_each_rule_names_the_line_and_field(
    tmp_path: Path, row: dict[str, object], operation: Operation, field: str, fragment: str
) -> None:
    good = {k: v for k, v in NPM.items() if k != "version" or operation.per_version}
    path = jsonl(tmp_path, good, "", row)  # the bad row is on line 3
    with pytest.raises(ManifestError) as caught:
        scan_manifest(path, operation=operation, domain="corp", repository="main")
    assert (caught.value.line, caught.value.field) == (3, field)
    assert str(caught.value).startswith(f"{path}:3: field {field!r}: ")
    assert fragment in str(caught.value)
    with pytest.raises(ManifestError, match=f"^{path}:3: field {field!r}: "):
        targets(path, operation, domain="corp", repository="main")


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"format": "npm", "package": "web"', "not valid JSON: Expecting ',' delimiter"),
        ('[{"format": "npm"}]', "not a JSON array"),
        ('"npm,web,1.0"', "expected a JSON object, got str"),
    ],
)
def test_malformed_json_lines_are_reported_by_line(
    tmp_path: Path, line: str, fragment: str
) -> None:
    path = jsonl(tmp_path, NPM, line)
    with pytest.raises(ManifestError, match=f"^{path}:2: ") as caught:
        scan_manifest(path, operation=DISPOSE)
    assert caught.value.field is None
    assert fragment in str(caught.value)


def test_bytes_that_are_not_utf8_are_reported_by_line(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"format,package,version\nnpm,web,1\nnpm,w\xff,1\n")
    with pytest.raises(ManifestError, match=f"^{path}:3: not UTF-8"):
        scan_manifest(path, operation=DISPOSE)


@pytest.mark.parametrize(
    ("text", "operation", "line", "field", "fragment"),
    [
        ("npm,,web,1.0\n", DISPOSE, 1, None, "needs a header row, e.g. format,namespace,"),
        ("format,pakage,version\n", DISPOSE, 1, "pakage", "did you mean 'package'?"),
        ("format,package\nnpm,web\n", DISPOSE, 1, "version", "the header has no 'version'"),
        ("format,package,package\n", DISPOSE, 1, "package", "column named twice"),
        ("format,package,version\nnpm,web,1\nnpm,web\n", DISPOSE, 3, None, "2 cells, but"),
        ('format,package,version\nnpm,web,1\nnpm,"web,1\n', DISPOSE, 3, None, "bad CSV"),
        ("format,package,version\nmaven,core,1\n", DISPOSE, 2, "namespace", "need a namespace"),
        ("format,package,version\nnpm,web,1\n", Operation.DELETE_PACKAGES, 2, "version", ""),
    ],
)
def test_csv_errors_name_the_line_and_column(
    tmp_path: Path,
    text: str,
    operation: Operation,
    line: int,
    field: str | None,
    fragment: str,
) -> None:
    path = csv_file(tmp_path, text)
    with pytest.raises(ManifestError) as caught:
        scan_manifest(path, operation=operation)
    assert (caught.value.line, caught.value.field) == (line, field)
    assert fragment in str(caught.value)


def test_delete_packages_accepts_an_empty_version_column(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "format,namespace,package,version\nnpm,acme,web,\npypi,,req,\n")
    summary = scan_manifest(path, operation=Operation.DELETE_PACKAGES)
    assert (summary.packages, summary.versions, summary.chunks) == (2, 0, 2)


def test_copy_takes_a_revision_on_every_row_or_on_none(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {**NPM, "revision": "R1"}, {**NPM, "version": "2"})
    with pytest.raises(ManifestError, match=r":2: field 'revision': .*\(line 1 has\)"):
        scan_manifest(path, operation=Operation.COPY)
    path = jsonl(tmp_path, {**NPM, "revision": "R1"}, {**NPM, "version": "2", "revision": "R2"})
    assert scan_manifest(path, operation=Operation.COPY).revisions_pinned == 2


def test_all_invalid_rows_are_listed_in_one_error_that_carries_the_first(tmp_path: Path) -> None:
    path = jsonl(tmp_path, NPM, {**NPM, "format": "NPM"}, NPM, {**NPM, "version": "a b"})
    with pytest.raises(ManifestInvalid) as caught:
        scan_manifest(path, operation=DISPOSE)
    err = caught.value
    assert (err.line, err.field, err.invalid_rows) == (2, "format", 2)
    assert [(p.line, p.field) for p in err.problems] == [(2, "format"), (4, "version")]
    message = str(err).splitlines()
    assert message[0] == f"{path}: 2 invalid rows; fix them and run again:"
    assert message[1].startswith(f"  {path}:2: field 'format': ")
    assert message[2].startswith(f"  {path}:4: field 'version': ")


def test_the_error_list_stops_at_twenty_and_counts_the_rest(tmp_path: Path) -> None:
    path = jsonl(tmp_path, *[{**NPM, "version": f"{i} x"} for i in range(25)])
    with pytest.raises(ManifestInvalid) as caught:
        scan_manifest(path, operation=DISPOSE)
    assert len(caught.value.problems) == MAX_ERRORS
    assert caught.value.invalid_rows == 25
    assert str(caught.value).endswith("... and 5 more invalid rows")


# --- duplicates ----------------------------------------------------------------------------


def test_duplicate_rows_collapse_first_wins_and_are_counted_with_lines(tmp_path: Path) -> None:
    rows = [NPM, {**NPM, "version": "2"}, NPM, {**NPM, "namespace": None}, NPM]
    path = jsonl(tmp_path, *rows)
    summary = scan_manifest(path, operation=DISPOSE)
    assert (summary.rows, summary.targets, summary.duplicates) == (5, 2, 3)
    assert summary.duplicate_lines == (3, 4, 5)  # a null namespace is the same as none
    assert [t.version for t in targets(path)] == ["1.0", "2"]


def test_the_same_version_with_another_revision_is_a_conflict(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {**NPM, "revision": "R1"}, NPM, {**NPM, "revision": "R2"})
    with pytest.raises(ManifestInvalid) as caught:
        scan_manifest(path, operation=DISPOSE)
    assert [(p.line, p.field) for p in caught.value.problems] == [(2, "revision"), (3, "revision")]
    assert "version '1.0' of npm:web is also on line 1 with a different revision" in str(
        caught.value
    )


def test_duplicates_among_thousands_of_rows_are_found(tmp_path: Path) -> None:
    rows = [{**NPM, "package": f"p{i % 3000 % 700}", "version": f"{i % 3000}"} for i in range(4000)]
    path = jsonl(tmp_path, *rows)
    summary = scan_manifest(path, operation=DISPOSE)
    assert (summary.targets, summary.duplicates, summary.packages) == (3000, 1000, 700)
    assert summary.duplicate_lines[0] == 3001
    assert len(targets(path)) == 3000


# --- re-reading, hashing, spooling, writing ------------------------------------------------


def test_read_targets_raises_on_a_row_that_became_invalid(tmp_path: Path) -> None:
    path = jsonl(tmp_path, NPM, {**NPM, "version": "2"})
    scan_manifest(path, operation=DISPOSE)
    jsonl(tmp_path, NPM, {**NPM, "version": "2/3"})
    reader = read_targets(path, operation=DISPOSE)
    assert next(reader).version == "1.0"
    with pytest.raises(ManifestError, match=":2: field 'version'"):
        next(reader)


def test_sha256_covers_every_byte_of_the_file(tmp_path: Path) -> None:
    path = jsonl(tmp_path, NPM, "", "   ")
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == expected
    assert scan_manifest(path, operation=DISPOSE).sha256 == expected


def test_spool_stdin_makes_an_owner_only_copy_and_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b'{"format": "npm", "package": "web", "version": "1.0"}\n'
    old = os.umask(0)  # a permissive umask must not widen the copy's mode
    try:
        dest = spool_stdin(tmp_path / "stdin.jsonl", io.BytesIO(data))
    finally:
        os.umask(old)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert dest.read_bytes() == data
    assert targets(dest) == [Target(PackageRef("npm", None, "web"), "1.0")]
    with pytest.raises(UsageError, match="cannot spool stdin"):
        spool_stdin(dest, io.BytesIO(b"other"))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert spool_stdin(tmp_path / "from-stdin").read_bytes() == data


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize(
    ("operation", "rows"),
    [
        (
            DISPOSE,
            [
                Target(PackageRef("npm", "acme", "web"), "1.0.0", "R,1"),
                Target(PackageRef("pypi", None, "requests"), "2.0"),
                Target(PackageRef("maven", "com.acme", "core"), "1.0-SNAPSHOT", "R2"),
            ],
        ),
        (
            Operation.DELETE_PACKAGES,
            [Target(PackageRef("npm", "acme", "web")), Target(PackageRef("cargo", None, "serde"))],
        ),
    ],
)
def test_write_manifest_round_trips_through_read_targets(
    tmp_path: Path, fmt: Literal["csv", "jsonl"], operation: Operation, rows: list[Target]
) -> None:
    path = tmp_path / f"out.{fmt}"
    with path.open("w", newline="") as out:
        assert write_manifest(rows, out, fmt) == len(rows)
    assert targets(path, operation) == rows
