"""The CodeArtifact adapter: `Registry` and `Catalog` calls as aioboto3 requests.

Every call runs inside `translated`, so what it fails with is a bulkops error; an absent
package is data here (NOT_FOUND versions, an empty page, no deleted package), not a stop.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from bulkops.aws.errors import translated
from bulkops.errors import ResourceMissing
from bulkops.model import CallResult, Chunk, JobSpec, Operation, PackageRef, VersionState
from bulkops.registry import Location, PackageQuery, VersionPage, VersionSummary

if TYPE_CHECKING:
    from types_aiobotocore_codeartifact import CodeArtifactClient


def _base(spec: JobSpec, ref: PackageRef, repository_key: str = "repository") -> dict[str, Any]:
    kw: dict[str, Any] = {"domain": spec.domain, "format": ref.format, "package": ref.package}
    if repository_key:
        kw[repository_key] = spec.repository
    if spec.domain_owner:
        kw["domainOwner"] = spec.domain_owner
    if ref.namespace is not None:  # botocore rejects namespace=None: omit the key instead
        kw["namespace"] = ref.namespace
    return kw


def build_request(spec: JobSpec, chunk: Chunk) -> dict[str, Any]:
    """The keyword arguments of the API call that sends `chunk` as the job's operation."""
    op = spec.operation
    if op is Operation.COPY:
        kw = _base(spec, chunk.ref, "")
        kw["sourceRepository"] = spec.repository
        kw["destinationRepository"] = spec.destination_repository
        kw["allowOverwrite"] = spec.allow_overwrite
        kw["includeFromUpstream"] = spec.include_from_upstream
        # versions XOR versionRevisions: pin when every version of the chunk has a revision
        if chunk.revisions and len(chunk.revisions) == len(chunk.versions):
            kw["versionRevisions"] = dict(chunk.revisions)
        else:
            kw["versions"] = list(chunk.versions)
        return kw
    kw = _base(spec, chunk.ref)
    if op is Operation.DELETE_PACKAGES:
        return kw
    kw["versions"] = list(chunk.versions)
    if op.pins_revisions and chunk.revisions:
        kw["versionRevisions"] = dict(chunk.revisions)
    if spec.expected_status:
        kw["expectedStatus"] = spec.expected_status
    if op is Operation.SET_STATUS:
        kw["targetStatus"] = spec.target_status
    return kw


class AwsRegistry:
    """`bulkops.registry.Registry` over a real (or emulated) CodeArtifact endpoint."""

    def __init__(self, client: CodeArtifactClient) -> None:
        self._client = client

    async def run_chunk(self, spec: JobSpec, chunk: Chunk) -> CallResult:
        kw = build_request(spec, chunk)
        c = self._client
        op = spec.operation
        try:
            with translated(op.api_name):
                if op is Operation.DELETE:
                    resp: Any = await c.delete_package_versions(**kw)
                elif op is Operation.DISPOSE:
                    resp = await c.dispose_package_versions(**kw)
                elif op is Operation.SET_STATUS:
                    resp = await c.update_package_versions_status(**kw)
                elif op is Operation.COPY:
                    resp = await c.copy_package_versions(**kw)
                else:
                    resp = await c.delete_package(**kw)
        except ResourceMissing as exc:
            if exc.resource_type != "package":
                raise
            if op is Operation.DELETE_PACKAGES:
                return CallResult(deleted_package=None)
            # one absent package is per-version data (NOT_FOUND), not a reason to stop
            return _all_not_found(chunk, exc)
        if op is Operation.DELETE_PACKAGES:
            return CallResult(deleted_package=dict(resp.get("deletedPackage") or {}))
        return CallResult(
            successful=dict(resp.get("successfulVersions") or {}),
            failed=dict(resp.get("failedVersions") or {}),
        )

    async def describe_version(
        self, spec: JobSpec, repository: str, ref: PackageRef, version: str
    ) -> VersionState | None:
        kw = _base(spec, ref, "")
        kw["repository"] = repository
        kw["packageVersion"] = version
        try:
            with translated("DescribePackageVersion"):
                resp = await self._client.describe_package_version(**kw)
        except ResourceMissing:
            return None
        found = resp["packageVersion"]
        return VersionState(found.get("revision"), str(found.get("status", "")))

    async def describe_repository(self, where: Location) -> None:
        """Check that the domain and repository exist: `ResourceMissing` (exit 2) if not."""
        with translated("DescribeRepository"):
            await self._client.describe_repository(**_where(where))

    # ---- reads for discovery (bulkops.registry.Catalog) -------------------------------

    async def list_packages_page(
        self, where: Location, query: PackageQuery, token: str | None, page_size: int
    ) -> tuple[list[PackageRef], str | None]:
        kw = _where(where)
        kw["maxResults"] = page_size
        for key, value in (
            ("format", query.format),
            ("namespace", query.namespace),
            ("packagePrefix", query.package_prefix),
            ("nextToken", token),
        ):
            if value is not None:  # botocore rejects None: omit the key instead
                kw[key] = value
        with translated("ListPackages"):
            resp: Any = await self._client.list_packages(**kw)
        refs = [
            PackageRef(p["format"], p.get("namespace"), p["package"])
            for p in resp.get("packages") or ()
        ]
        return refs, resp.get("nextToken")

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
        kw = _where(where, ref)
        kw["maxResults"] = page_size
        kw["sortBy"] = "PUBLISHED_TIME"
        for key, value in (("status", status), ("originType", origin_type), ("nextToken", token)):
            if value is not None:
                kw[key] = value
        try:
            with translated("ListPackageVersions"):
                resp: Any = await self._client.list_package_versions(**kw)
        except ResourceMissing as exc:
            if exc.resource_type != "package":
                raise
            return VersionPage((), None, None)  # deleted since it was listed
        versions = tuple(
            VersionSummary(
                v["version"],
                v.get("revision"),
                v.get("status", ""),
                (v.get("origin") or {}).get("originType"),
            )
            for v in resp.get("versions") or ()
        )
        return VersionPage(versions, resp.get("defaultDisplayVersion"), resp.get("nextToken"))

    async def describe_published(
        self, where: Location, ref: PackageRef, version: str
    ) -> datetime | None:
        kw = _where(where, ref)
        kw["packageVersion"] = version
        try:
            with translated("DescribePackageVersion"):
                resp: Any = await self._client.describe_package_version(**kw)
        except ResourceMissing as exc:
            if exc.resource_type in ("repository", "domain"):
                raise
            return None
        published = resp["packageVersion"].get("publishedTime")
        return published if isinstance(published, datetime) else None


def _where(where: Location, ref: PackageRef | None = None) -> dict[str, Any]:
    kw: dict[str, Any] = {"domain": where.domain, "repository": where.repository}
    if where.domain_owner:
        kw["domainOwner"] = where.domain_owner
    if ref is not None:
        kw["format"], kw["package"] = ref.format, ref.package
        if ref.namespace is not None:
            kw["namespace"] = ref.namespace
    return kw


def _all_not_found(chunk: Chunk, exc: ResourceMissing) -> CallResult:
    """Every version of the chunk as NOT_FOUND, with the service's message."""
    error = {"errorCode": "NOT_FOUND", "errorMessage": exc.reason or str(exc)}
    return CallResult(failed={v: dict(error) for v in chunk.versions})
