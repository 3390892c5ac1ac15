"""Undo of a finished set-status job: manifests and commands that restore the previous statuses.

Only status changes between Published, Unlisted and Archived can be undone; dispose and
delete cannot (the assets are gone). For each version the job changed, the previous
status comes from the job's manifest (`bulkops plan` records it in the `status` field),
else from the job's --expected-status, else it is taken to be Published (and said so).

One manifest per previous status, beside the checkpoint (C.undo.jsonl, or
C.undo-Unlisted.jsonl and so on when there are several), each row pinning the revision
the job saw, and one command per manifest, guarded by --expected-status (the status the
job set): a version republished or moved on since the job is left alone.
"""

from __future__ import annotations

import csv
import json
import shlex
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from bulkops.errors import UsageError
from bulkops.journal.location import open_store
from bulkops.journal.records import JournalHeader, read_header
from bulkops.journal.store import JournalStore
from bulkops.manifest.files import detect_format, file_sha256
from bulkops.model import Operation
from bulkops.report.merge import ALREADY_APPLIED, SUCCEEDED
from bulkops.report.stream import packages_of

REVERSIBLE = ("Published", "Unlisted", "Archived")
Key = tuple[str, str, str, str]  # format, namespace ("" for none), package, version


@dataclass(frozen=True, slots=True)
class UndoGroup:
    """The versions that go back to one status, their manifest and the command to run."""

    status: str
    manifest: str  # where the store put it: a path beside the checkpoint
    versions: int
    command: str


@dataclass(frozen=True, slots=True)
class UndoPlan:
    groups: tuple[UndoGroup, ...]
    unchanged: int  # already in the job's target status before it ran: nothing to undo
    assumed: bool  # previous statuses were not recorded; Published was assumed
    irreversible: int  # previous status not one a version can return to


def _previous_statuses(header: JournalHeader, changed: dict[Key, str]) -> dict[Key, str]:
    """The statuses the job's manifest records for the versions it changed (blocking)."""
    return {key: status for key, status in _manifest_statuses(header) if key in changed}


def _manifest_statuses(header: JournalHeader) -> Iterator[tuple[Key, str]]:
    """(version key, status) of the job's manifest rows that record a status."""
    path = Path(header.manifest_path or "")
    if not path.is_file() or file_sha256(path) != header.manifest_sha256:
        return
    fmt = detect_format(path, header.manifest_format)
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = (
            csv.DictReader(f) if fmt == "csv" else (json.loads(line) for line in f if line.strip())
        )
        for row in rows:
            if status := row.get("status"):
                key = (row["format"], row.get("namespace") or "", row["package"], row["version"])
                yield key, status


async def make_undo(checkpoint: Path) -> UndoPlan:
    """Write the undo manifests of a set-status job and return what to run."""
    store = open_store(checkpoint)
    if not await store.exists():
        raise UsageError(f"checkpoint {checkpoint} does not exist")
    header = await read_header(store)
    spec = header.spec
    if spec.operation is not Operation.SET_STATUS:
        raise UsageError(
            f"a {spec.operation.value} job cannot be undone: only status changes "
            "(set-status to Archived, Unlisted or Published) are reversible"
        )
    changed: dict[Key, str] = {}  # version -> revision the job left it at
    async with aclosing(packages_of(store)) as packages:
        async for pkg in packages:
            r = pkg.ref
            for version in [*pkg.with_outcome(SUCCEEDED), *pkg.with_outcome(ALREADY_APPLIED)]:
                revision = pkg.versions[version][1]
                changed[(r.format, r.namespace or "", r.package, version)] = revision
    previous = await anyio.to_thread.run_sync(_previous_statuses, header, changed)
    assumed = False
    fallback = spec.expected_status
    if len(previous) < len(changed) and fallback is None:
        fallback, assumed = "Published", True
    groups: dict[str, list[Key]] = {}
    unchanged = irreversible = 0
    for key in changed:
        before = previous.get(key) or fallback or "Published"
        if before == spec.target_status:
            unchanged += 1
        elif before not in REVERSIBLE:
            irreversible += 1
        else:
            groups.setdefault(before, []).append(key)
    written = []
    for status, keys in sorted(groups.items()):
        name = "undo.jsonl" if len(groups) == 1 else f"undo-{status}.jsonl"
        await _write(store, name, sorted(keys), changed)
        where = store.locate(name)
        written.append(UndoGroup(status, where, len(keys), _command(header, status, where)))
    return UndoPlan(tuple(written), unchanged, assumed, irreversible)


async def _write(
    store: JournalStore, name: str, keys: list[Key], revisions: dict[Key, str]
) -> None:
    out = store.writer(name)
    try:
        for fmt, ns, package, version in keys:
            row = {"format": fmt, "namespace": ns or None, "package": package}
            row["version"] = version
            if revision := revisions[(fmt, ns, package, version)]:
                row["revision"] = revision
            line = json.dumps({k: v for k, v in row.items() if v}, separators=(",", ":"))
            out.write(line.encode() + b"\n")
        await out.commit()
    finally:
        await out.abort()


def _command(header: JournalHeader, status: str, manifest: str) -> str:
    spec = header.spec
    args = ["bulkops", "set-status", "--domain", spec.domain]
    if spec.domain_owner:
        args += ["--domain-owner", spec.domain_owner]
    args += ["--repository", spec.repository, "--manifest", manifest]
    args += ["--target-status", status, "--expected-status", spec.target_status or ""]
    return shlex.join([*args, "--execute"])


def undo_lines(checkpoint: Path, plan: UndoPlan) -> list[str]:
    """What `report --undo` prints."""
    if not plan.groups:
        return [f"{checkpoint}: no version to restore (the job changed none reversibly)"]
    lines = []
    for g in plan.groups:
        lines.append(f"{g.versions} versions go back to {g.status}: {g.manifest}")
        lines.append(f"  {g.command}")
    if plan.assumed:
        lines.append(
            "note: the job's manifest does not record the previous statuses; "
            "Published was assumed (a plan from `bulkops plan` records them)"
        )
    if plan.unchanged:
        lines.append(f"{plan.unchanged} versions already had the job's status: nothing to undo")
    if plan.irreversible:
        lines.append(f"{plan.irreversible} versions came from a status they cannot return to")
    return lines
