"""An in-memory registry for engine tests: it can throttle, fail, lose answers, skip and delay."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from bulkops.errors import NetworkError
from bulkops.model import CallResult, Chunk, JobSpec, Operation, PackageRef, VersionState

# A script step decides the fate of one call: None answers normally; an exception is
# raised before acting; "lose" acts and then raises NetworkError (the answer was lost);
# "skip:N" answers the first N versions SKIPPED.
Step = Exception | str | None


@dataclass
class FakeRegistry:
    """Versions keyed by (repository, ref, version) -> [status, revision]."""

    versions: dict[tuple[str, PackageRef, str], list[str]] = field(default_factory=dict)
    script: list[Step] = field(default_factory=list)
    fault: Callable[[int], Step] | None = None
    delay: float = 0.0
    load_delay: Callable[[int], float] | None = None  # delay from the calls in flight (load)
    calls: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    sent: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def add(self, repo: str, ref: PackageRef, version: str, status: str = "Published") -> str:
        revision = f"rev-{ref.package}-{version}"
        self.versions[(repo, ref, version)] = [status, revision]
        return revision

    def _next_step(self) -> Step:
        n = sum(self.calls.values())
        if self.script:
            return self.script.pop(0)
        return self.fault(n) if self.fault else None

    async def run_chunk(self, spec: JobSpec, chunk: Chunk) -> CallResult:
        self.calls[spec.operation.api_name] += 1
        step = self._next_step()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await anyio.sleep(self.delay)
            if self.load_delay is not None:
                await anyio.sleep(self.load_delay(self.in_flight))
            if isinstance(step, Exception):
                raise step
            skip = (
                int(step.split(":")[1]) if isinstance(step, str) and step.startswith("skip") else 0
            )
            self.sent.append((chunk.id, chunk.versions))
            result = self._apply(spec, chunk, skip)
            if step == "lose":
                raise NetworkError("connection dropped after the request was applied")
            return result
        finally:
            self.in_flight -= 1

    def _apply(self, spec: JobSpec, chunk: Chunk, skip: int) -> CallResult:
        ok: dict[str, dict[str, str]] = {}
        failed: dict[str, dict[str, str]] = {}
        repo = spec.repository
        if spec.operation is Operation.DELETE_PACKAGES:
            keys = [k for k in self.versions if k[0] == repo and k[1] == chunk.ref]
            if not keys:
                return CallResult(deleted_package=None)
            for k in keys:
                del self.versions[k]
            return CallResult(deleted_package={"package": chunk.ref.package})
        for i, v in enumerate(chunk.versions):
            if i < skip:
                failed[v] = {"errorCode": "SKIPPED", "errorMessage": "skipped"}
                continue
            entry = self.versions.get((repo, chunk.ref, v))
            if entry is None:
                failed[v] = {"errorCode": "NOT_FOUND", "errorMessage": "absent"}
                continue
            if spec.expected_status and entry[0] != spec.expected_status:
                failed[v] = {"errorCode": "MISMATCHED_STATUS", "errorMessage": entry[0]}
                continue
            pinned = chunk.revisions.get(v)
            if pinned is not None and pinned != entry[1]:
                failed[v] = {"errorCode": "MISMATCHED_REVISION", "errorMessage": entry[1]}
                continue
            op = spec.operation
            if op is Operation.DELETE:
                del self.versions[(repo, chunk.ref, v)]
                ok[v] = {"revision": entry[1], "status": "Deleted"}
            elif op is Operation.DISPOSE:
                entry[0] = "Disposed"
                ok[v] = {"revision": entry[1], "status": "Disposed"}
            elif op is Operation.SET_STATUS:
                entry[0] = spec.target_status or "Published"
                ok[v] = {"revision": entry[1], "status": entry[0]}
            else:
                dest = (spec.destination_repository or "", chunk.ref, v)
                if dest in self.versions and not spec.allow_overwrite:
                    failed[v] = {"errorCode": "ALREADY_EXISTS", "errorMessage": "exists"}
                    continue
                self.versions[dest] = [entry[0], entry[1]]
                ok[v] = {"revision": entry[1], "status": entry[0]}
        return CallResult(successful=ok, failed=failed)

    async def describe_version(
        self, spec: JobSpec, repository: str, ref: PackageRef, version: str
    ) -> VersionState | None:
        self.calls["DescribePackageVersion"] += 1
        entry = self.versions.get((repository, ref, version))
        return VersionState(entry[1], entry[0]) if entry else None


@dataclass
class MemoryJournal:
    """Collects outcomes and dispatch marks as the journal would, durably-by-definition."""

    written: list[tuple[object, bool]] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    writes: int = 0

    async def write(self, outcomes: list[tuple[object, bool]], dispatched: list[str] = ()) -> None:  # type: ignore[assignment]
        self.writes += 1
        self.written.extend(outcomes)
        self.dispatched.extend(dispatched)
