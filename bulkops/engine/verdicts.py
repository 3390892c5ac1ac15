"""What one answer means for each version of a chunk (CODEARTIFACT.md's per-version table).

- SKIPPED: not attempted; sent again.
- NOT_FOUND on delete or dispose, when an earlier call for the chunk may have acted
  (its answer was lost, or a run was cut short while the chunk was in flight): done,
  already absent. Otherwise permanent.
- MISMATCHED_STATUS on set-status or dispose, when an earlier call may have acted: the
  version's status is read; already the wanted status means done (already applied).
- ALREADY_EXISTS on copy: done when the destination holds the source's revision.
- Everything else is permanent.
"""

from __future__ import annotations

from functools import partial

import structlog

from bulkops.engine.limits import AdaptiveRate
from bulkops.engine.retry import Abandoned, CallRunner, GaveUp
from bulkops.errors import FatalCall
from bulkops.model import (
    CallResult,
    Chunk,
    ChunkOutcome,
    JobSpec,
    Operation,
    Settled,
    VersionState,
)
from bulkops.registry import Registry

log = structlog.get_logger("bulkops.engine.verdicts")

_ABSENT_MEANS_DONE = (Operation.DELETE, Operation.DISPOSE)
_STATUS_MEANS_DONE = (Operation.SET_STATUS, Operation.DISPOSE)


class Verdicts:
    """Turns a chunk's answer into the outcome the journal records."""

    def __init__(
        self, spec: JobSpec, registry: Registry, calls: CallRunner, read_scope: AdaptiveRate
    ) -> None:
        self.spec = spec
        self.registry = registry
        self.calls = calls
        self.read_scope = read_scope
        op = spec.operation
        # the status a version has once the job's operation is done to it
        self.wanted = spec.target_status if op is Operation.SET_STATUS else "Disposed"

    async def outcome(
        self, chunk: Chunk, result: CallResult, attempt: int, maybe_applied: bool
    ) -> ChunkOutcome:
        op = self.spec.operation
        if op is Operation.DELETE_PACKAGES:  # an absent package is as deleted as it gets
            return ChunkOutcome(
                chunk.id,
                chunk.ref,
                attempt,
                deleted_package=result.deleted_package,
                package_done=True,
            )
        settled: dict[str, Settled] = {}
        retry: list[str] = []
        for version, info in result.failed.items():
            code = info.get("errorCode")
            if code == "SKIPPED":
                retry.append(version)
            elif code == "NOT_FOUND" and maybe_applied and op in _ABSENT_MEANS_DONE:
                settled[version] = "already_absent"
            elif code == "MISMATCHED_STATUS" and maybe_applied and op in _STATUS_MEANS_DONE:
                wanted = await self._has_wanted_status(chunk, version)
                if wanted is None:  # could not tell now: ask again on the next attempt
                    retry.append(version)
                elif wanted:
                    settled[version] = "already_applied"
            elif code == "ALREADY_EXISTS" and op is Operation.COPY:
                identical = await self._identical_copy(chunk, version)
                if identical is None:
                    retry.append(version)
                elif identical:
                    settled[version] = "identical_copy"
        answered = result.successful.keys() | result.failed.keys()
        if missing := [v for v in chunk.versions if v not in answered]:
            # the service answered for fewer versions than it was sent: send them again
            log.warning("versions_unanswered", package=str(chunk.ref), versions=missing[:10])
            retry.extend(missing)
        return ChunkOutcome(
            chunk.id,
            chunk.ref,
            attempt,
            successful=result.successful,
            failed=result.failed,
            settled=settled,
            retry=tuple(retry),
            revisions=chunk.revisions,
        )

    async def _describe(self, repository: str, chunk: Chunk, version: str) -> VersionState | None:
        fn = partial(self.registry.describe_version, self.spec, repository, chunk.ref, version)
        return await self.calls.call(self.read_scope, fn)

    async def _has_wanted_status(self, chunk: Chunk, version: str) -> bool | None:
        """Whether the version already has the status the job gives, and the revision the
        job pinned if it pinned one (a changed version is never done); None: unknown now."""
        try:
            state = await self._describe(self.spec.repository, chunk, version)
        except (GaveUp, Abandoned):
            return None
        except FatalCall as exc:  # e.g. no DescribePackageVersion permission: keep the answer
            log.warning("status_check_refused", package=str(chunk.ref), error=str(exc))
            return False
        pin = chunk.revisions.get(version)
        return (
            state is not None
            and state.status == self.wanted
            and (pin is None or state.revision == pin)
        )

    async def _identical_copy(self, chunk: Chunk, version: str) -> bool | None:
        """Whether the destination holds the source's revision; None: unknown now."""
        spec = self.spec
        try:
            source = chunk.revisions.get(version)
            if source is None:
                src = await self._describe(spec.repository, chunk, version)
                source = src.revision if src is not None else None
            dest = await self._describe(spec.destination_repository or "", chunk, version)
        except GaveUp as gave_up:
            log.warning("copy_check_failed", package=str(chunk.ref), error=str(gave_up.last))
            return None
        except Abandoned:
            return None
        except FatalCall as exc:  # e.g. no DescribePackageVersion permission: keep the answer
            log.warning("copy_check_refused", package=str(chunk.ref), error=str(exc))
            return False
        return source is not None and dest is not None and dest.revision == source
