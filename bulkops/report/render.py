"""The report's renderings: a terminal table, JSON, JSONL and CSV (or a manifest of failures).

`render` reads the journal twice through its store (see `report.stream`) and writes each
package as soon as its last record is merged, so memory follows the packages in flight,
not the job. It is async: the CLI calls it with `anyio.run`.
"""

from __future__ import annotations

import csv
import heapq
import json
from collections import Counter
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Any, Literal, Protocol, TextIO, TypeAlias

from rich.console import Console
from rich.table import Table

from bulkops.journal.records import JournalHeader
from bulkops.journal.store import JournalStore
from bulkops.model import Operation
from bulkops.report.merge import (
    DONE_OUTCOMES,
    FAILED,
    PackageReport,
    Totals,
)
from bulkops.report.stream import last_records_of, packages_of

ReportFormat: TypeAlias = Literal["table", "json", "jsonl", "csv"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("table", "json", "jsonl", "csv")

CSV_COLUMNS = (
    "format",
    "namespace",
    "package",
    "version",
    "revision",
    "outcome",
    "status",
    "errorCode",
    "errorMessage",
)
MANIFEST_COLUMNS = CSV_COLUMNS[:5]  # what a bulkops manifest takes


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class _Writer(Protocol):
    def package(self, pkg: PackageReport) -> None: ...

    def finish(self, totals: Totals) -> None: ...


async def render(
    store: JournalStore | Sequence[JournalStore],
    fmt: ReportFormat,
    out: TextIO,
    *,
    failed_only: bool = False,
    top: int = 10,
    expected: int | None = None,
) -> Totals:
    """Write the report of the journal in `store` to `out` as `fmt`; return the totals.

    `failed_only` keeps the permanently failed and pending versions; with "csv" the
    output is then a manifest of exactly those versions, ready for a new run. Several
    stores (the shards of one job) are reported as one job, shard after shard; `expected`
    (what the whole job plans) counts what no store holds yet as not started.
    """
    stores = [store] if not isinstance(store, Sequence) else list(store)
    passes = [await last_records_of(one) for one in stores]
    header = combined([h for h, _, _ in passes])
    writer: _Writer
    if fmt == "table":
        writer = _TableWriter(out, header, top)
    elif fmt == "json":
        writer = _JsonWriter(out, header, failed_only)
    elif fmt == "jsonl":
        writer = _JsonlWriter(out, failed_only)
    elif fmt == "csv":
        writer = _CsvWriter(out, failed_only)
    else:
        raise ValueError(f"unknown report format {fmt!r}; choose from {REPORT_FORMATS}")
    per_package = header.spec.operation is Operation.DELETE_PACKAGES
    planned = header.packages if per_package else header.versions
    totals = Totals(expected=expected if expected is not None else planned or None)
    for one, (_, last, count) in zip(stores, passes, strict=True):
        async with aclosing(packages_of(one, last, count)) as packages:
            async for pkg in packages:
                totals.add(pkg)
                writer.package(pkg)
    writer.finish(totals)
    return totals


def combined(headers: Sequence[JournalHeader]) -> JournalHeader:
    """One header for the shards of a job: the first one's, with the totals of them all."""
    first = headers[0]
    if len(headers) == 1:
        return first
    return replace(
        first,
        packages=sum(h.packages for h in headers),
        versions=sum(h.versions for h in headers),
        chunks=sum(h.chunks for h in headers),
    )


class _JsonlWriter:
    def __init__(self, out: TextIO, failed_only: bool) -> None:
        self.out, self.failed_only = out, failed_only

    def package(self, pkg: PackageReport) -> None:
        if not self.failed_only or pkg.undone:
            self.out.write(_dumps(pkg.to_dict(self.failed_only)) + "\n")

    def finish(self, totals: Totals) -> None:
        pass


class _JsonWriter:
    """One document, streamed: the job, the packages as they close, then the totals."""

    def __init__(self, out: TextIO, header: JournalHeader, failed_only: bool) -> None:
        self.out, self.failed_only, self.sep = out, failed_only, ""
        out.write('{"job":' + _dumps(header.to_dict()) + ',"packages":[')

    def package(self, pkg: PackageReport) -> None:
        if not self.failed_only or pkg.undone:
            self.out.write(self.sep + "\n" + _dumps(pkg.to_dict(self.failed_only)))
            self.sep = ","

    def finish(self, totals: Totals) -> None:
        self.out.write('\n],"totals":' + _dumps(totals.to_dict()) + "}\n")


class _CsvWriter:
    """One row per version (per package for delete-packages); a manifest when failed-only."""

    def __init__(self, out: TextIO, failed_only: bool) -> None:
        self.rows, self.failed_only = csv.writer(out, lineterminator="\n"), failed_only
        self.rows.writerow(MANIFEST_COLUMNS if failed_only else CSV_COLUMNS)

    def package(self, pkg: PackageReport) -> None:
        ref = (pkg.ref.format, pkg.ref.namespace or "", pkg.ref.package)
        states = [("", pkg.package)] if pkg.package is not None else pkg.versions.items()
        for version, (outcome, a, b) in states:
            if outcome in DONE_OUTCOMES:
                if not self.failed_only:
                    self.rows.writerow((*ref, version, a, outcome, b, "", ""))
                continue
            # The revision the job pinned, if any: a new run must keep the same guard.
            pin = pkg.pins.get(version, "")
            if self.failed_only:
                self.rows.writerow((*ref, version, pin))
            else:
                self.rows.writerow((*ref, version, pin, outcome, "", a, b))

    def finish(self, totals: Totals) -> None:
        pass


class _TableWriter:
    """A terminal summary: totals, failures by code and the packages with most failures."""

    def __init__(self, out: TextIO, header: JournalHeader, top: int) -> None:
        self.out, self.header, self.top = out, header, top
        # (undone, order, name, failed, pending, commonest code): a bounded min-heap
        self.worst: list[tuple[int, int, str, int, int, str]] = []
        self.seen = 0

    def package(self, pkg: PackageReport) -> None:
        if not (undone := pkg.undone) or self.top <= 0:
            return
        states = [pkg.package] if pkg.package is not None else pkg.versions.values()
        codes = Counter(code for outcome, code, _ in states if outcome not in DONE_OUTCOMES)
        failed = sum(outcome == FAILED for outcome, _, _ in states)
        self.seen += 1  # negated below so that, among equals, earlier packages rank first
        item = (
            undone,
            -self.seen,
            str(pkg.ref),
            failed,
            undone - failed,
            codes.most_common(1)[0][0],
        )
        if len(self.worst) < self.top:
            heapq.heappush(self.worst, item)
        else:
            heapq.heappushpop(self.worst, item)

    def finish(self, totals: Totals) -> None:
        h, console = self.header, Console(file=self.out)
        spec = h.spec
        into = f" → {spec.destination_repository}" if spec.destination_repository else ""
        console.print(
            f"[bold]bulkops report[/] job {h.job_id}: {spec.operation.value}"
            f" on {spec.domain}/{spec.repository}{into} (created {h.created_at})"
        )
        summary = Table(title="Totals", show_header=False)
        for label, value in (
            ("planned", totals.expected),
            ("packages reported", totals.packages),
            ("succeeded", totals.succeeded),
            ("  of which already absent", totals.already_absent),
            ("  of which already applied", totals.already_applied),
            ("  of which identical copies", totals.identical_copies),
            ("failed (permanent)", totals.permanent_failures),
            ("pending", sum(totals.pending.values()) - totals.may_have_been_applied),
            ("may have been applied (cancelled in flight)", totals.may_have_been_applied),
            ("not started", totals.not_started),
        ):
            summary.add_row(label, "?" if value is None else str(value))
        console.print(summary)
        if totals.failed or totals.pending:
            codes = Table("errorCode", "failed", "pending", title="Failures by code")
            for code in sorted(set(totals.failed) | set(totals.pending)):
                codes.add_row(code, str(totals.failed[code]), str(totals.pending[code]))
            console.print(codes)
        if self.worst:
            worst = Table("package", "failed", "pending", "commonest errorCode")
            worst.title = f"Packages with most failures (top {len(self.worst)})"
            for _, _, name, failed, pending, code in sorted(self.worst, reverse=True):
                worst.add_row(name, str(failed), str(pending), code)
            console.print(worst)
