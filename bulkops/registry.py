"""The one seam between the engine and CodeArtifact: a Protocol of the calls bulkops makes."""

from __future__ import annotations

from typing import Protocol

from bulkops.model import CallResult, Chunk, JobSpec, PackageRef


class Registry(Protocol):
    """What the engine needs from CodeArtifact.

    Implementations raise `bulkops.errors.CallFailed` subclasses for transient failures
    (the engine retries them) and `bulkops.errors.FatalCall` subclasses for failures
    that stop the run. Per-version failures are data, returned in the CallResult.
    """

    async def run_chunk(self, spec: JobSpec, chunk: Chunk) -> CallResult:
        """Send one chunk as the job's operation and return the API's per-version maps."""
        ...

    async def describe_revision(
        self, spec: JobSpec, repository: str, ref: PackageRef, version: str
    ) -> str | None:
        """The current revision of one version in `repository`, or None if it is absent."""
        ...
