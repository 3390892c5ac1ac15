"""A plan from the live repository: discover, select, check the rails, write the plan file.

A plan file is a manifest every operation reads with `--manifest` (JSON Lines or CSV by
its extension). Each row pins the version's revision as listed, so running the plan
acts only on versions unchanged since they were reviewed (a changed one comes back
MISMATCHED_REVISION), and carries two fields the operations ignore: `status` (the
status it had when planned, which `report --undo` restores) and `rule` (the select
rule that chose it). `domain` and `repository` tie the plan to where it was made.

The file appears only when everything was listed and no rail refused: it is written
with the one owner-only atomic write (`bulkops.journal.atomic.PrivateFile`), synced in a
worker thread, and renamed over the target.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import anyio
import anyio.to_thread

from bulkops.errors import UsageError
from bulkops.jobs.rails import Rails, Shortfall, check_caps, check_keep_min
from bulkops.journal.atomic import PrivateFile
from bulkops.model import PackageRef
from bulkops.registry import Catalog, Location
from bulkops.selection.discover import Discovery, DiscoverySettings, PackageVersions
from bulkops.selection.select import GONE, Decision, PackageDecision, Selection

PLAN_COLUMNS = (
    "format",
    "namespace",
    "package",
    "version",
    "revision",
    "status",
    "rule",
    "domain",
    "repository",
)
PlanFormat = Literal["csv", "jsonl"]
MAX_LISTED = 10


def plan_format(path: Path) -> PlanFormat:
    """The plan's format from its extension (.csv, else JSON Lines: .jsonl, .ndjson, .json)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise UsageError(f"plan file {path}: name it .jsonl or .csv so every operation can read it")


@dataclass(slots=True)
class PlanSummary:
    """What a plan holds and what discovery did to make it."""

    where: Location
    path: Path | None = None
    packages_scanned: int = 0
    versions_scanned: int = 0
    packages: int = 0  # packages with at least one selected version
    versions: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_format: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)  # by reason
    publish_ordered: list[str] = field(default_factory=list)  # packages ordered by time
    calls: Counter[str] = field(default_factory=Counter)
    throttled: int = 0

    def add(self, pkg: PackageVersions, decision: PackageDecision) -> None:
        self.packages_scanned += 1
        self.versions_scanned += len(pkg.versions)
        ordered = decision.ordered
        if ordered and ordered.by == "published" and len(self.publish_ordered) < MAX_LISTED:
            self.publish_ordered.append(str(pkg.ref))
        for d in decision.kept:
            self.kept[d.kept or "?"] += 1
        if decision.selected:
            self.packages += 1
        for d in decision.selected:
            self.versions += 1
            self.by_rule[d.rule] += 1
            self.by_status[d.version.status] += 1
            self.by_format[pkg.ref.format] += 1


class _Rows:
    """Writes plan rows (and kept rows) in the plan's format."""

    def __init__(self, out: IO[str] | _Text, fmt: PlanFormat, where: Location) -> None:
        self.out, self.fmt, self.where = out, fmt, where
        self.csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writerow(PLAN_COLUMNS)

    def write(self, ref: PackageRef, d: Decision, extra: dict[str, str] | None = None) -> None:
        v = d.version
        values = (
            ref.format,
            ref.namespace,
            ref.package,
            v.version,
            v.revision,
            v.status,
            d.rule,
            self.where.domain,
            self.where.repository,
        )
        if self.csv is not None:
            self.csv.writerow(["" if x is None else x for x in values])
            return
        row: dict[str, Any] = {
            k: x for k, x in zip(PLAN_COLUMNS, values, strict=True) if x is not None
        }
        row.update(extra or {})
        self.out.write(json.dumps(row, separators=(",", ":")) + "\n")


class _Text:
    """Text rows into a `PrivateFile`, UTF-8 encoded (what `csv.writer` needs)."""

    def __init__(self, file: PrivateFile) -> None:
        self.file = file

    def write(self, text: str) -> int:
        self.file.write(text.encode())
        return len(text)


class _PlanWriter:
    """The plan file in the making: owner-only and atomic, published whole on commit."""

    def __init__(self, out: Path, where: Location, kept_out: Path | None) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self.file = PrivateFile(out)
        self.rows = _Rows(_Text(self.file), plan_format(out), where)
        self.kept_file = kept_out.open("w", encoding="utf-8") if kept_out else None
        self.kept = _Rows(self.kept_file, "jsonl", where) if self.kept_file else None

    async def commit(self) -> None:
        """Sync and publish the plan, in a worker thread (EFS fsyncs are slow)."""
        await anyio.to_thread.run_sync(self._commit)

    def _commit(self) -> None:
        if self.kept_file is not None:
            self.kept_file.close()
        self.file.commit()

    async def abort(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._abort)

    def _abort(self) -> None:
        if self.kept_file is not None:
            self.kept_file.close()
        self.file.abort()


async def make_plan(
    catalog: Catalog,
    where: Location,
    selection: Selection,
    out: Path,
    *,
    rails: Rails | None = None,
    settings: DiscoverySettings | None = None,
    kept_out: Path | None = None,
) -> PlanSummary:
    """List the repository, select, and write the plan to `out`; Refused leaves no file."""
    rails = rails or Rails()
    plan_format(out)  # a bad name is refused before any call
    summary = PlanSummary(where, out)
    shortfalls: list[Shortfall] = []
    discovery = Discovery(catalog, where, selection.listing(rails.keep_min), settings)
    writer = _PlanWriter(out, where, kept_out)

    def on_package(pkg: PackageVersions) -> None:
        decision = selection.evaluate(pkg)
        summary.add(pkg, decision)
        for d in decision.selected:
            writer.rows.write(pkg.ref, d)
        if writer.kept is not None:
            for d in decision.kept:
                writer.kept.write(pkg.ref, d, {"kept": d.kept or ""})
        if rails.keep_min and decision.selected and decision.remaining < rails.keep_min:
            removes = sum(d.version.status not in GONE for d in decision.selected)
            shortfalls.append(Shortfall(pkg.ref, decision.live, removes))
        # refuse as soon as a cap is passed: no point listing the rest
        check_caps(rails, versions=summary.versions, packages=summary.packages)

    try:
        stats = await discovery.run(on_package)
        summary.calls, summary.throttled = stats.calls, stats.throttled
        check_keep_min(rails.keep_min, shortfalls)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
    return summary


def _n(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary_lines(s: PlanSummary, kept_out: Path | None = None) -> list[str]:
    """The plan's summary for the terminal."""

    def counts(c: Counter[str]) -> str:
        return ", ".join(f"{k} {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

    where = f"{s.where.domain}/{s.where.repository}"
    lines = [
        f"plan: {_n(s.versions, 'version')} of {_n(s.packages, 'package')} selected in {where} "
        f"(scanned {_n(s.versions_scanned, 'version')} of {_n(s.packages_scanned, 'package')})",
    ]
    if s.versions:
        lines += [
            f"  by rule:   {counts(s.by_rule)}",
            f"  by status: {counts(s.by_status)}",
            f"  by format: {counts(s.by_format)}",
        ]
    kept = sum(s.kept.values())
    lines.append(f"  kept:      {kept} selected versions" + (f": {counts(s.kept)}" if kept else ""))
    if kept_out is not None:
        lines.append(f"  kept versions and why: {kept_out}")
    if s.publish_ordered:
        lines.append(
            "  ordered by publish time (a version their format cannot read): "
            + ", ".join(s.publish_ordered)
        )
    calls = ", ".join(f"{op} {n}" for op, n in sorted(s.calls.items()))
    lines.append(f"  calls:     {calls or 'none'}; throttled {s.throttled}")
    if s.path is not None:
        lines.append(f"  written:   {s.path}")
    return lines
