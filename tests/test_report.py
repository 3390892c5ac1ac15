"""The report: journal records merged per package into the API's shapes, and its renderings."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from bulkops.journal.journal import JournalHeader, LocalFileStore
from bulkops.journal.records import chunk_record, encode
from bulkops.model import CANCELLED_IN_FLIGHT, Chunk, ChunkOutcome, JobSpec, Operation, PackageRef
from bulkops.report.merge import PackageReport, Totals, last_records, merge
from bulkops.report.render import CSV_COLUMNS, MANIFEST_COLUMNS, render

A = PackageRef("npm", "scope", "a")
B = PackageRef("pypi", None, "b")
Record = dict[str, Any]


def header(op: Operation = Operation.DELETE, versions: int = 0, packages: int = 0) -> Record:
    spec = JobSpec(op, "dom", "repo", destination_repository="dst")
    h = JournalHeader.new(spec, packages=packages, versions=versions)
    return {"type": "header", **h.to_dict()}


def ok(*versions: str, status: str = "Deleted") -> dict[str, dict[str, str]]:
    return {v: {"revision": f"rev-{v}", "status": status} for v in versions}


def fail(code: str, *versions: str) -> dict[str, dict[str, str]]:
    return {v: {"errorCode": code, "errorMessage": f"{code}: {v}"} for v in versions}


def rec(ref: PackageRef, attempt: int = 1, complete: bool = False, **fields: Any) -> Record:
    chunk = fields.pop("chunk", "c-" + ref.package)
    return chunk_record(ChunkOutcome(chunk, ref, attempt, **fields), complete, "t")


def merged(records: list[Record]) -> dict[PackageRef, PackageReport]:
    return {p.ref: p for p in merge(records)}


def totals_of(packages: dict[PackageRef, PackageReport], expected: int | None = None) -> Totals:
    totals = Totals(expected=expected)
    for pkg in packages.values():
        totals.add(pkg)
    return totals


# A delete job over two runs: SKIPPED, then a failed call, then a resumed run finishing it.
HISTORY = [
    header(versions=7),
    rec(
        A,
        1,
        successful=ok("1"),
        failed=fail("SKIPPED", "2", "3") | fail("MISMATCHED_STATUS", "4"),
        retry=("2", "3"),
    ),
    rec(A, 2, retry=("2", "3"), error={"code": "ServerError", "message": "500 twice"}),
    {"type": "event", "at": "t", "kind": "run_resumed", "data": {}},
    rec(
        A,
        3,
        True,
        successful=ok("2"),
        failed=fail("NOT_FOUND", "3"),
        settled={"3": "already_absent"},
    ),
    rec(B, 1, successful=ok("9"), failed=fail("SKIPPED", "8"), retry=("8",)),
]


def test_a_version_that_failed_then_succeeded_is_only_successful() -> None:
    a = merged(HISTORY)[A]
    assert a.successful_versions()["2"] == {"revision": "rev-2", "status": "Deleted"}
    assert "2" not in a.failed_versions()


def test_already_absent_delete_is_successful_deleted_and_listed() -> None:
    a = merged(HISTORY)[A]
    assert a.successful_versions()["3"] == {"status": "Deleted"}  # revision unknown: omitted
    assert a.to_dict()["alreadyAbsentVersions"] == ["3"]


def test_already_absent_dispose_is_successful_disposed() -> None:
    records = [
        header(Operation.DISPOSE),
        rec(A, 2, True, failed=fail("NOT_FOUND", "1"), settled={"1": "already_absent"}),
    ]
    assert merged(records)[A].successful_versions() == {"1": {"status": "Disposed"}}


def test_identical_copy_is_successful_published_and_listed() -> None:
    records = [
        header(Operation.COPY),
        rec(
            A,
            1,
            True,
            successful=ok("1", status="Published"),
            failed=fail("ALREADY_EXISTS", "2", "3"),
            settled={"2": "identical_copy"},
        ),
    ]
    a = merged(records)[A]
    assert a.successful_versions()["2"] == {"status": "Published"}
    assert a.failed_versions() == fail("ALREADY_EXISTS", "3")
    assert a.to_dict()["identicalCopyVersions"] == ["2"]
    totals = totals_of(merged(records))
    assert (totals.succeeded, totals.identical_copies, totals.failed["ALREADY_EXISTS"]) == (2, 1, 1)


def test_pending_versions_keep_their_last_error_and_are_not_permanent() -> None:
    records = [*HISTORY[:3]]  # the run stopped after the failed call
    a = merged(records)[A]
    assert a.failed_versions()["2"] == {"errorCode": "ServerError", "errorMessage": "500 twice"}
    assert a.to_dict()["pendingVersions"] == ["2", "3"]
    totals = totals_of(merged(records))
    assert totals.pending == {"ServerError": 2}
    assert totals.failed == {"MISMATCHED_STATUS": 1}
    b_only = [header(), rec(B, 1, failed=fail("SKIPPED", "8"), retry=("8",))]
    assert not totals_of(merged(b_only)).has_permanent_failures
    assert totals.has_permanent_failures


def test_totals_count_every_outcome_and_what_never_started() -> None:
    totals = totals_of(merged(HISTORY), expected=7)
    assert totals.to_dict() == {
        "packages": 2,
        "succeeded": 4,
        "alreadyAbsent": 1,
        "alreadyApplied": 0,
        "identicalCopies": 0,
        "failed": 1,
        "failedByCode": {"MISMATCHED_STATUS": 1},
        "pending": 1,
        "pendingByCode": {"SKIPPED": 1},
        "mayHaveBeenApplied": 0,
        "notStarted": 1,
        "hasPermanentFailures": True,
    }


def test_every_version_appears_exactly_once_across_both_maps() -> None:
    for pkg in merge(HISTORY):
        ok_, failed = pkg.successful_versions(), pkg.failed_versions()
        assert not ok_.keys() & failed.keys()
    a = merged(HISTORY)[A]
    assert a.successful_versions().keys() | a.failed_versions().keys() == {"1", "2", "3", "4"}


def test_versions_left_out_of_an_answer_are_pending_unanswered() -> None:
    records = [header(), rec(A, 1, successful=ok("1"), retry=("2",))]
    a = merged(records)[A]
    assert a.failed_versions()["2"]["errorCode"] == "UNANSWERED"
    assert a.to_dict()["pendingVersions"] == ["2"]


def test_a_later_failure_never_undoes_a_success() -> None:
    records = [
        header(),
        rec(A, 1, successful=ok("1")),
        rec(A, 2, failed=fail("SKIPPED", "1"), retry=("1",)),
        rec(A, 3, retry=("1",), error={"code": "NetworkError", "message": "lost"}),
    ]
    assert merged(records)[A].successful_versions() == ok("1")


def test_streaming_merge_yields_each_package_after_its_last_record() -> None:
    last, count = last_records(HISTORY)
    assert count == len(HISTORY)
    streamed = merge(HISTORY, last)
    first = next(streamed)  # A's last record comes before B's
    assert first.ref == A
    rest = list(streamed)
    assert [p.ref for p in rest] == [B]
    assert first.to_dict() == merged(HISTORY)[A].to_dict()


def test_delete_packages_report_deleted_already_absent_and_pending() -> None:
    c = PackageRef("cargo", None, "c")
    summary = {"format": "npm", "namespace": "scope", "package": "a"}
    records = [
        header(Operation.DELETE_PACKAGES, packages=3),
        rec(A, 1, True, deleted_package=summary, package_done=True),
        rec(B, 1, True, package_done=True),
        rec(c, 1, error={"code": "Conflict", "message": "409"}),
    ]
    packages = merged(records)
    assert packages[A].to_dict() == {**A.to_dict(), "deletedPackage": summary}
    assert packages[B].to_dict() == {**B.to_dict(), "alreadyAbsent": True}
    line = packages[c].to_dict()
    assert line["error"] == {"errorCode": "Conflict", "errorMessage": "409"} and line["pending"]
    totals = totals_of(packages, expected=3)
    assert (totals.succeeded, totals.already_absent, totals.pending["Conflict"]) == (2, 1, 1)


def journal_file(tmp_path: Path, records: list[Record]) -> LocalFileStore:
    store = LocalFileStore(tmp_path / "job.journal")
    anyio.run(store.create, encode(records[0]))
    anyio.run(store.append, b"".join(encode(r) for r in records[1:]))
    anyio.run(store.release)
    return LocalFileStore(store.path)


def rendered(store: LocalFileStore, fmt: Any, failed_only: bool = False) -> str:
    out = io.StringIO()
    anyio.run(partial(render, store, fmt, out, failed_only=failed_only))
    return out.getvalue()


def test_jsonl_is_one_api_shaped_line_per_package(tmp_path: Path) -> None:
    lines = [json.loads(x) for x in rendered(journal_file(tmp_path, HISTORY), "jsonl").splitlines()]
    assert lines[0] == {
        **A.to_dict(),
        "successfulVersions": ok("1", "2") | {"3": {"status": "Deleted"}},
        "failedVersions": fail("MISMATCHED_STATUS", "4"),
        "alreadyAbsentVersions": ["3"],
    }
    assert lines[1] == {
        **B.to_dict(),
        "successfulVersions": ok("9"),
        "failedVersions": fail("SKIPPED", "8"),
        "pendingVersions": ["8"],
    }


def test_failed_only_jsonl_keeps_only_failures(tmp_path: Path) -> None:
    records = [*HISTORY, rec(PackageRef("npm", None, "clean"), 1, True, successful=ok("1"))]
    text = rendered(journal_file(tmp_path, records), "jsonl", failed_only=True)
    lines = [json.loads(x) for x in text.splitlines()]
    assert [line["package"] for line in lines] == ["a", "b"]
    assert all(line["successfulVersions"] == {} for line in lines)
    assert "alreadyAbsentVersions" not in lines[0]


def test_json_is_one_document_with_job_totals_and_packages(tmp_path: Path) -> None:
    doc = json.loads(rendered(journal_file(tmp_path, HISTORY), "json"))
    assert doc["job"]["spec"]["operation"] == "delete"
    assert doc["job"]["jobId"] == HISTORY[0]["jobId"]
    assert doc["totals"]["notStarted"] == 1 and doc["totals"]["hasPermanentFailures"]
    assert [p["package"] for p in doc["packages"]] == ["a", "b"]


def test_csv_has_one_row_per_version_with_its_outcome(tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(rendered(journal_file(tmp_path, HISTORY), "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_version = {(r["package"], r["version"]): r for r in rows}
    assert len(by_version) == len(rows) == 6
    assert by_version[("a", "2")]["outcome"] == "succeeded"
    assert by_version[("a", "2")]["revision"] == "rev-2"
    assert by_version[("a", "3")]["outcome"] == "already_absent"
    assert by_version[("a", "4")]["errorCode"] == "MISMATCHED_STATUS"
    assert by_version[("b", "8")]["outcome"] == "pending"
    assert by_version[("b", "8")]["namespace"] == ""


def test_failed_only_csv_is_a_manifest_of_exactly_the_failed_versions(tmp_path: Path) -> None:
    text = rendered(journal_file(tmp_path, HISTORY), "csv", failed_only=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert (
        tuple(rows[0])
        == MANIFEST_COLUMNS
        == ("format", "namespace", "package", "version", "revision")
    )
    assert rows[1:] == [["npm", "scope", "a", "4", ""], ["pypi", "", "b", "8", ""]]
    manifest = pytest.importorskip("bulkops.manifest.files")
    path = tmp_path / "failed.csv"
    path.write_text(text)
    targets = list(manifest.read_targets(path, operation=Operation.DELETE))
    assert [(t.ref, t.version, t.revision) for t in targets] == [(A, "4", None), (B, "8", None)]


def test_failed_only_manifest_keeps_the_revisions_the_job_pinned(tmp_path: Path) -> None:
    records = [
        header(Operation.DISPOSE),
        rec(
            A,
            1,
            successful=ok("1", status="Disposed"),
            failed=fail("MISMATCHED_REVISION", "2") | fail("SKIPPED", "3", "4"),
            retry=("3", "4"),
            revisions={"1": "r1", "2": "r2", "3": "r3", "4": "r4"},
        ),
        rec(A, 2, True, successful=ok("4", status="Disposed"), failed=fail("SKIPPED", "3")),
    ]
    text = rendered(journal_file(tmp_path, records), "csv", failed_only=True)
    assert list(csv.reader(io.StringIO(text)))[1:] == [
        ["npm", "scope", "a", "2", "r2"],
        ["npm", "scope", "a", "3", "r3"],
    ]
    manifest = pytest.importorskip("bulkops.manifest.files")
    path = tmp_path / "failed.csv"
    path.write_text(text)
    targets = list(manifest.read_targets(path, operation=Operation.DISPOSE))
    assert [(t.version, t.revision) for t in targets] == [("2", "r2"), ("3", "r3")]


def test_table_summarises_totals_codes_and_worst_packages(tmp_path: Path) -> None:
    text = rendered(journal_file(tmp_path, HISTORY), "table")
    assert HISTORY[0]["jobId"] in text
    for expected in ("succeeded", "MISMATCHED_STATUS", "SKIPPED", "npm:scope/a", "pypi:b"):
        assert expected in text


def test_render_returns_the_totals_for_the_exit_code(tmp_path: Path) -> None:
    totals = anyio.run(render, journal_file(tmp_path, HISTORY), "jsonl", io.StringIO())
    assert totals.has_permanent_failures and totals.not_started == 1


class GrowingStore(LocalFileStore):
    """A journal another run appends to between the report's two passes."""

    reads = 0

    async def read(self) -> AsyncIterator[bytes]:  # type: ignore[override]
        self.reads += 1
        async for line in super().read():
            yield line
        if self.reads > 1:
            yield encode(rec(A, 9, True, successful=ok("99")))


def test_records_appended_during_a_report_are_left_out_of_it(tmp_path: Path) -> None:
    store = journal_file(tmp_path, HISTORY)
    out = io.StringIO()
    anyio.run(render, GrowingStore(store.path), "jsonl", out)
    packages = [json.loads(x)["package"] for x in out.getvalue().splitlines()]
    assert packages == ["a", "b"]
    assert "99" not in out.getvalue()


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        anyio.run(render, journal_file(tmp_path, HISTORY), "xml", io.StringIO())


def test_chunks_of_a_package_merge_into_one_report() -> None:
    first, second = Chunk.build(A, ("1",)), Chunk.build(A, ("2",))
    records = [
        header(),
        rec(A, 1, True, chunk=first.id, successful=ok("1")),
        rec(B, 1, True, successful=ok("1")),
        rec(A, 1, True, chunk=second.id, successful=ok("2")),
    ]
    last, _ = last_records(records)
    reports = list(merge(records, last))
    assert [p.ref for p in reports] == [B, A]
    assert reports[1].successful_versions() == ok("1", "2")


def test_already_applied_status_update_is_successful_with_the_target_status() -> None:
    spec = JobSpec(Operation.SET_STATUS, "dom", "repo", target_status="Archived")
    head = {"type": "header", **JournalHeader.new(spec, versions=2).to_dict()}
    records = [
        head,
        rec(A, 2, True, successful=ok("1", status="Archived"),
            failed=fail("MISMATCHED_STATUS", "2"), settled={"2": "already_applied"}),
    ]  # fmt: skip
    a = merged(records)[A]
    assert a.successful_versions()["2"] == {"status": "Archived"}
    assert a.failed_versions() == {}
    assert a.to_dict()["alreadyAppliedVersions"] == ["2"]
    totals = totals_of({A: a}, expected=2)
    assert totals.already_applied == 1
    assert not totals.has_permanent_failures


def test_versions_whose_call_was_cancelled_in_flight_are_may_have_been_applied(
    tmp_path: Path,
) -> None:
    cut = {"errorCode": CANCELLED_IN_FLIGHT, "errorMessage": "cancelled after it was sent"}
    store = journal_file(
        tmp_path,
        [header(versions=10), rec(A, retry=("1", "2", "3"), error=cut)],
    )
    out = io.StringIO()
    totals = anyio.run(render, store, "table", out)
    assert totals.may_have_been_applied == 3
    assert totals.not_started == 7
    assert totals.to_dict()["mayHaveBeenApplied"] == 3
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in out.getvalue().splitlines()
        if line.count("│") == 3
    }
    assert rows["may have been applied (cancelled in flight)"] == "3"
    assert rows["pending"] == "0"
    assert rows["not started"] == "7"
