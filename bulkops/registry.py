"""The one seam between the engine and CodeArtifact: a Protocol of the calls bulkops makes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bulkops.model import CallResult, Chunk, JobSpec, PackageRef, VersionState


class Registry(Protocol):
    """What the engine needs from CodeArtifact.

    Implementations raise `bulkops.errors.CallFailed` subclasses for transient failures
    (the engine retries them) and `bulkops.errors.FatalCall` subclasses for failures
    that stop the run. Per-version failures are data, returned in the CallResult.
    """

    async def run_chunk(self, spec: JobSpec, chunk: Chunk) -> CallResult:
        """Send one chunk as the job's operation and return the API's per-version maps."""
        ...

    async def describe_version(
        self, spec: JobSpec, repository: str, ref: PackageRef, version: str
    ) -> VersionState | None:
        """One version's current revision and status in `repository`; None if it is absent."""
        ...


@dataclass(frozen=True, slots=True)
class Location:
    """One repository of a domain: where a listing reads."""

    domain: str
    repository: str
    domain_owner: str | None = None


@dataclass(frozen=True, slots=True)
class PackageQuery:
    """ListPackages' server-side filters; `namespace` and `package_prefix` match prefixes."""

    format: str | None = None
    namespace: str | None = None
    package_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class VersionSummary:
    """One entry of ListPackageVersions (PackageVersionSummary): no publish time."""

    version: str
    revision: str | None
    status: str
    origin_type: str | None


@dataclass(frozen=True, slots=True)
class VersionPage:
    """One page of ListPackageVersions, sorted by publish time as the service returns it."""

    versions: tuple[VersionSummary, ...]
    default_display_version: str | None
    next_token: str | None


class Catalog(Protocol):
    """The read calls that discovery makes; errors as for `Registry`.

    A package or version that vanished between two calls is not an error: the list
    comes back empty and the describe returns None.
    """

    async def list_packages_page(
        self, where: Location, query: PackageQuery, token: str | None, page_size: int
    ) -> tuple[list[PackageRef], str | None]:
        """One page of ListPackages: the packages and the next token (None at the end)."""
        ...

    async def list_versions_page(
        self,
        where: Location,
        ref: PackageRef,
        *,
        status: str | None,
        origin_type: str | None,
        token: str | None,
        page_size: int,
    ) -> VersionPage:
        """One page of ListPackageVersions with sortBy=PUBLISHED_TIME."""
        ...

    async def describe_published(
        self, where: Location, ref: PackageRef, version: str
    ) -> datetime | None:
        """DescribePackageVersion's publishedTime, or None if the version is gone."""
        ...
