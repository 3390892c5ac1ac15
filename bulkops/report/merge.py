"""The outcome of a job per package, merged from every journal record into the API's shapes.

Each version of a package ends in exactly one of five outcomes, whatever the retries and
resumes on the way: succeeded, already_absent (a delete or dispose whose answer was lost
came back NOT_FOUND), identical_copy (copy found the same revision in place) — these three
are listed in `successfulVersions` — or failed (permanent) or pending (SKIPPED, a failed
call, or left out of an answer: never final) — listed in `failedVersions` with their last
error (the call's error code, or UNANSWERED).

Success is sticky; otherwise the latest record wins. `merge` holds a package only until
its last record when given `last_records()`, so a report streams in two passes.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from bulkops.model import CANCELLED_IN_FLIGHT, FailureMap, Operation, PackageRef, SuccessMap

Outcome: TypeAlias = Literal[
    "succeeded", "already_absent", "already_applied", "identical_copy", "failed", "pending"
]
SUCCEEDED: Outcome = "succeeded"
ALREADY_ABSENT: Outcome = "already_absent"
ALREADY_APPLIED: Outcome = "already_applied"  # a lost answer's change found in place
IDENTICAL_COPY: Outcome = "identical_copy"
FAILED: Outcome = "failed"
PENDING: Outcome = "pending"
DONE_OUTCOMES = frozenset({SUCCEEDED, ALREADY_ABSENT, ALREADY_APPLIED, IDENTICAL_COPY})

# (outcome, revision or errorCode, status or errorMessage): a tuple per version, not two
# dicts, keeps a million versions in memory at a fraction of the JSON objects' size.
VersionState: TypeAlias = tuple[Outcome, str, str]


@dataclass(slots=True)
class PackageReport:
    """The merged fate of one package's versions (or, for delete-packages, of the package)."""

    ref: PackageRef
    versions: dict[str, VersionState] = field(default_factory=dict)
    # delete-packages only: the package's own outcome and the API's deletedPackage summary
    package: VersionState | None = None
    deleted_package: dict[str, Any] | None = None
    # revisions the job pinned for versions not done, for a manifest of the failures
    pins: dict[str, str] = field(default_factory=dict)

    def successful_versions(self) -> SuccessMap:
        out: SuccessMap = {}
        for v, (outcome, revision, status) in self.versions.items():
            if outcome in DONE_OUTCOMES:
                # A settled version's revision is unknown: the key is optional in the API.
                out[v] = (
                    {"revision": revision, "status": status} if revision else {"status": status}
                )
        return out

    def failed_versions(self) -> FailureMap:
        return {
            v: {"errorCode": code, "errorMessage": message}
            for v, (outcome, code, message) in self.versions.items()
            if outcome not in DONE_OUTCOMES
        }

    def with_outcome(self, outcome: Outcome) -> list[str]:
        return [v for v, state in self.versions.items() if state[0] == outcome]

    @property
    def undone(self) -> int:
        """Versions (or the package) failed or pending."""
        if self.package is not None:
            return int(self.package[0] not in DONE_OUTCOMES)
        return sum(state[0] not in DONE_OUTCOMES for state in self.versions.values())

    def to_dict(self, failed_only: bool = False) -> dict[str, Any]:
        """One package in the API's shapes, as a JSONL report line."""
        out: dict[str, Any] = self.ref.to_dict()
        if self.package is not None:
            outcome, code, message = self.package
            if outcome == SUCCEEDED:
                out["deletedPackage"] = self.deleted_package
            elif outcome == ALREADY_ABSENT:
                out["alreadyAbsent"] = True
            else:
                out["error"] = {"errorCode": code, "errorMessage": message}
                out["pending"] = outcome == PENDING
            return out
        out["successfulVersions"] = {} if failed_only else self.successful_versions()
        out["failedVersions"] = self.failed_versions()
        for key, outcome in (
            ("alreadyAbsentVersions", ALREADY_ABSENT),
            ("alreadyAppliedVersions", ALREADY_APPLIED),
            ("identicalCopyVersions", IDENTICAL_COPY),
            ("pendingVersions", PENDING),
        ):
            if (failed_only and outcome != PENDING) or not (listed := self.with_outcome(outcome)):
                continue
            out[key] = listed
        return out


@dataclass(slots=True)
class Totals:
    """Counts over a job: versions, or packages for delete-packages."""

    expected: int | None = None  # from the header; what was planned
    packages: int = 0
    succeeded: int = 0  # every success, the already-absent and identical copies included
    already_absent: int = 0
    already_applied: int = 0
    identical_copies: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # permanent, by errorCode
    pending: Counter[str] = field(default_factory=Counter)  # by last errorCode

    def add(self, pkg: PackageReport) -> None:
        self.packages += 1
        states = [pkg.package] if pkg.package is not None else pkg.versions.values()
        for outcome, code, _ in states:
            if outcome in DONE_OUTCOMES:
                self.succeeded += 1
                self.already_absent += outcome == ALREADY_ABSENT
                self.already_applied += outcome == ALREADY_APPLIED
                self.identical_copies += outcome == IDENTICAL_COPY
            else:
                (self.failed if outcome == FAILED else self.pending)[code] += 1

    @property
    def permanent_failures(self) -> int:
        return sum(self.failed.values())

    @property
    def has_permanent_failures(self) -> bool:
        return self.permanent_failures > 0

    @property
    def may_have_been_applied(self) -> int:
        """Pending because their call was cancelled on the wire: it may have acted."""
        return self.pending[CANCELLED_IN_FLIGHT]

    @property
    def not_started(self) -> int | None:
        """Planned but never in a journal record (the run stopped before them)."""
        if self.expected is None:
            return None
        seen = self.succeeded + self.permanent_failures + sum(self.pending.values())
        return max(self.expected - seen, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "packages": self.packages,
            "succeeded": self.succeeded,
            "alreadyAbsent": self.already_absent,
            "alreadyApplied": self.already_applied,
            "identicalCopies": self.identical_copies,
            "failed": self.permanent_failures,
            "failedByCode": dict(sorted(self.failed.items())),
            "pending": sum(self.pending.values()),
            "pendingByCode": dict(sorted(self.pending.items())),
            "mayHaveBeenApplied": self.may_have_been_applied,
            "notStarted": self.not_started,
            "hasPermanentFailures": self.has_permanent_failures,
        }


_UNANSWERED = ("UNANSWERED", "the service's answer did not list this version")


def _ref(d: dict[str, Any]) -> PackageRef:
    return PackageRef(d["format"], d.get("namespace"), d["package"])


def _error_fields(error: dict[str, Any]) -> tuple[str, str]:
    """(errorCode, errorMessage) of a failed call's record, whichever key names it uses."""
    code = error.get("errorCode") or error.get("code") or error.get("kind") or "CallFailed"
    message = error.get("errorMessage") or error.get("message") or ""
    return sys.intern(str(code)), str(message)


def last_records(records: Iterable[dict[str, Any]]) -> tuple[dict[PackageRef, int], int]:
    """First pass: each package's last record number, and how many records were read.

    Give the count to the second pass (`itertools.islice`) so that records appended to a
    live journal between the passes are left out of both.
    """
    it = iter(records)
    next(it)  # the header
    last: dict[PackageRef, int] = {}
    count = 1
    for i, record in enumerate(it):
        count += 1
        if record["type"] == "chunk":
            last[_ref(record["ref"])] = i
    return last, count


class Merger:
    """Folds a journal's records, after its header, into one report per package."""

    def __init__(
        self, header: dict[str, Any], last: Mapping[PackageRef, int] | None = None
    ) -> None:
        self.operation = Operation(header["spec"]["operation"])
        self.absent = "Disposed" if self.operation is Operation.DISPOSE else "Deleted"
        # the status a version has once the job's operation is done to it
        self.applied = header["spec"].get("targetStatus") or "Disposed"
        self.last = last
        self.open: dict[PackageRef, PackageReport] = {}

    def feed(self, i: int, record: dict[str, Any]) -> PackageReport | None:
        """Fold record `i` (numbered as in `last_records`); the package it closes, if any."""
        if record["type"] != "chunk":
            return None
        key = _ref(record["ref"])
        if (pkg := self.open.get(key)) is None:
            pkg = self.open[key] = PackageReport(key)
        if self.operation is Operation.DELETE_PACKAGES:
            _apply_package(pkg, record)
        else:
            _apply_versions(pkg, record, self.absent, self.applied)
        if self.last is not None and self.last.get(key) == i:
            return self.open.pop(key)
        return None


def merge(
    records: Iterable[dict[str, Any]], last: Mapping[PackageRef, int] | None = None
) -> Iterator[PackageReport]:
    """Merge a journal's records (header first) into one report per package.

    With `last` from `last_records`, each package is yielded after its last record and
    forgotten; without it, every package is held and yielded at the end.
    """
    it = iter(records)
    merger = Merger(next(it), last)
    for i, record in enumerate(it):
        if (pkg := merger.feed(i, record)) is not None:
            yield pkg
    yield from merger.open.values()


def _apply_versions(pkg: PackageReport, record: dict[str, Any], absent: str, applied: str) -> None:
    versions, settled, pins = pkg.versions, record["settled"], pkg.pins
    retry = set(record["retry"])
    pins.update(record.get("revisions", ()))
    for v, info in record["successfulVersions"].items():
        revision, status = info.get("revision") or "", info.get("status") or ""
        versions[v] = (SUCCEEDED, revision, sys.intern(status))
        pins.pop(v, None)
    for v, info in record["failedVersions"].items():
        if v in versions and versions[v][0] in DONE_OUTCOMES:
            continue
        reason = settled.get(v)
        if reason == "already_absent":
            versions[v] = (ALREADY_ABSENT, "", absent)
            pins.pop(v, None)
        elif reason == "already_applied":
            versions[v] = (ALREADY_APPLIED, pins.get(v, ""), applied)
            pins.pop(v, None)
        elif reason == "identical_copy":
            versions[v] = (IDENTICAL_COPY, "", "Published")
            pins.pop(v, None)
        else:
            code = sys.intern(str(info.get("errorCode", "")))
            message = str(info.get("errorMessage") or "")
            versions[v] = (PENDING if v in retry else FAILED, code, message)
    error = record["error"]
    # Versions to send again that the answer did not list: a failed call, or no answer at all
    if missing := [v for v in retry if v not in record["failedVersions"]]:
        code, message = _error_fields(error) if error is not None else _UNANSWERED
        for v in missing:
            if v not in versions or versions[v][0] not in DONE_OUTCOMES:
                versions[v] = (PENDING, code, message)


def _apply_package(pkg: PackageReport, record: dict[str, Any]) -> None:
    if pkg.package is not None and pkg.package[0] in DONE_OUTCOMES:
        return
    if record.get("packageDone"):
        deleted = record.get("deletedPackage")
        pkg.package = (SUCCEEDED if deleted else ALREADY_ABSENT, "", "")
        pkg.deleted_package = deleted
    elif (error := record["error"]) is not None:
        pkg.package = (PENDING, *_error_fields(error))
    elif pkg.package is None:
        pkg.package = (PENDING, "PENDING", "not finished")
