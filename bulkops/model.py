"""Domain values of bulkops: packages, targets, chunks, job specs and per-chunk outcomes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeAlias, get_args

Format: TypeAlias = Literal["npm", "pypi", "maven", "nuget", "generic", "ruby", "swift", "cargo"]
FORMATS: tuple[Format, ...] = get_args(Format)

# Per-format namespace rules (CODEARTIFACT.md): required for some formats, absent for others.
NAMESPACE_REQUIRED: frozenset[str] = frozenset({"maven", "swift", "generic"})
NAMESPACE_FORBIDDEN: frozenset[str] = frozenset({"pypi", "nuget", "ruby", "cargo"})

Status: TypeAlias = Literal[
    "Published", "Unfinished", "Unlisted", "Archived", "Disposed", "Deleted"
]
STATUSES: tuple[Status, ...] = get_args(Status)
TargetStatus: TypeAlias = Literal["Published", "Unlisted", "Archived"]
TARGET_STATUSES: tuple[TargetStatus, ...] = get_args(TargetStatus)

ErrorCode: TypeAlias = Literal[
    "ALREADY_EXISTS",
    "MISMATCHED_REVISION",
    "MISMATCHED_STATUS",
    "NOT_ALLOWED",
    "NOT_FOUND",
    "SKIPPED",
]
ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)

Scope: TypeAlias = Literal["write", "copy", "read", "list"]

# API-shaped per-version maps, exactly as CodeArtifact returns them:
#   successfulVersions: {version: {"revision": str, "status": str}}
#   failedVersions:     {version: {"errorCode": str, "errorMessage": str}}
SuccessMap: TypeAlias = dict[str, dict[str, str]]
FailureMap: TypeAlias = dict[str, dict[str, str]]

# Why a version that came back failed still counts as done (see CODEARTIFACT.md).
Settled: TypeAlias = Literal["already_absent", "already_applied", "identical_copy"]

MAX_CHUNK_SIZE = 100
# The errorCode journaled for a call cut off on the wire (a second signal): it may have acted.
CANCELLED_IN_FLIGHT = "CANCELLED_IN_FLIGHT"


class Operation(StrEnum):
    """The bulk operations, named as on the command line."""

    DELETE = "delete"
    DISPOSE = "dispose"
    SET_STATUS = "set-status"
    COPY = "copy"
    DELETE_PACKAGES = "delete-packages"

    @property
    def api_name(self) -> str:
        return _API_NAMES[self]

    @property
    def scope(self) -> Scope:
        """The quota this operation draws on."""
        return "copy" if self is Operation.COPY else "write"

    @property
    def per_version(self) -> bool:
        """False for delete-packages, whose manifest rows name packages only."""
        return self is not Operation.DELETE_PACKAGES

    @property
    def pins_revisions(self) -> bool:
        """Whether the API takes versionRevisions for this operation."""
        return self in (Operation.DISPOSE, Operation.SET_STATUS, Operation.COPY)


_API_NAMES = {
    Operation.DELETE: "DeletePackageVersions",
    Operation.DISPOSE: "DisposePackageVersions",
    Operation.SET_STATUS: "UpdatePackageVersionsStatus",
    Operation.COPY: "CopyPackageVersions",
    Operation.DELETE_PACKAGES: "DeletePackage",
}


@dataclass(frozen=True, slots=True)
class PackageRef:
    """One package of a repository: format, optional namespace, name."""

    format: str
    namespace: str | None
    package: str

    def sort_key(self) -> tuple[str, str, str]:
        return (self.format, self.namespace or "", self.package)

    def __lt__(self, other: PackageRef) -> bool:  # sorts with or without a namespace
        return self.sort_key() < other.sort_key()

    def __str__(self) -> str:
        if self.namespace is None:
            return f"{self.format}:{self.package}"
        return f"{self.format}:{self.namespace}/{self.package}"

    def to_dict(self) -> dict[str, str | None]:
        return {"format": self.format, "namespace": self.namespace, "package": self.package}


@dataclass(frozen=True, slots=True)
class Target:
    """One validated manifest row: a package version (or a whole package) to act on."""

    ref: PackageRef
    version: str | None = None
    revision: str | None = None


def chunk_id(ref: PackageRef, versions: tuple[str, ...]) -> str:
    """A stable id for a chunk: the same package and versions give the same id on any machine.

    Shards can be assigned by `int(chunk_id, 16) % shard_count`.
    """
    # each part followed by a NUL, hashed in one go (the ids journals already hold)
    parts = "\0".join((ref.format, ref.namespace or "", ref.package, *versions))
    return hashlib.blake2b((parts + "\0").encode(), digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True)
class Chunk:
    """At most 100 versions of one package, sent in one API call (none for DeletePackage)."""

    id: str
    ref: PackageRef
    versions: tuple[str, ...]
    # version -> revision for the versions that pin one; empty when none do
    revisions: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def build(
        cls, ref: PackageRef, versions: tuple[str, ...], revisions: dict[str, str] | None = None
    ) -> Chunk:
        return cls(chunk_id(ref, versions), ref, versions, dict(revisions or {}))

    def narrowed(self, versions: tuple[str, ...]) -> Chunk:
        """The same chunk (same id) carrying only `versions`: for retries and resumes."""
        return Chunk(
            self.id,
            self.ref,
            versions,
            {v: r for v, r in self.revisions.items() if v in versions},
        )


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything that defines a job; stored in the journal header so resume needs nothing else."""

    operation: Operation
    domain: str
    repository: str  # the source repository for copy
    domain_owner: str | None = None
    destination_repository: str | None = None
    expected_status: str | None = None
    target_status: str | None = None
    allow_overwrite: bool = False
    include_from_upstream: bool = False
    chunk_size: int = MAX_CHUNK_SIZE

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation.value,
            "domain": self.domain,
            "repository": self.repository,
            "domainOwner": self.domain_owner,
            "destinationRepository": self.destination_repository,
            "expectedStatus": self.expected_status,
            "targetStatus": self.target_status,
            "allowOverwrite": self.allow_overwrite,
            "includeFromUpstream": self.include_from_upstream,
            "chunkSize": self.chunk_size,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        return cls(
            operation=Operation(d["operation"]),
            domain=d["domain"],
            repository=d["repository"],
            domain_owner=d.get("domainOwner"),
            destination_repository=d.get("destinationRepository"),
            expected_status=d.get("expectedStatus"),
            target_status=d.get("targetStatus"),
            allow_overwrite=bool(d.get("allowOverwrite", False)),
            include_from_upstream=bool(d.get("includeFromUpstream", False)),
            chunk_size=int(d.get("chunkSize", MAX_CHUNK_SIZE)),
        )


@dataclass(frozen=True, slots=True)
class VersionState:
    """What DescribePackageVersion says of one version that bulkops needs."""

    revision: str | None
    status: str


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one successful (HTTP 200) bulk call returned, in the API's shapes."""

    successful: SuccessMap = field(default_factory=dict)
    failed: FailureMap = field(default_factory=dict)
    # DeletePackage only: the deletedPackage summary, or None when the package was already absent
    deleted_package: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """One attempt at one chunk, as the engine hands it to the journal.

    `successful` and `failed` are the API's maps as returned. `settled` names failed
    versions that nonetheless count as done; `retry` names versions to send again
    (SKIPPED); `error` is set when the whole call failed after its retry budget, in
    which case every version of the attempt is still pending.
    """

    chunk_id: str
    ref: PackageRef
    attempt: int
    successful: SuccessMap = field(default_factory=dict)
    failed: FailureMap = field(default_factory=dict)
    settled: dict[str, Settled] = field(default_factory=dict)
    retry: tuple[str, ...] = ()
    error: dict[str, str] | None = None
    deleted_package: dict[str, Any] | None = None
    package_done: bool = False  # DeletePackage: the package is gone (deleted now or before)
    # version -> revision the chunk pinned (Chunk.revisions); the journal keeps those of the
    # versions not done, so a manifest of failures keeps their revision guard
    revisions: dict[str, str] = field(default_factory=dict)

    @property
    def permanent(self) -> list[str]:
        """Versions that failed for good in this attempt: not settled, not to be retried."""
        retry = set(self.retry)
        return [v for v in self.failed if v not in retry and v not in self.settled]
