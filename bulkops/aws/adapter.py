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
    params: dict[str, Any] = {"domain": spec.domain, "format": ref.format, "package": ref.package}
    if repository_key:
        params[repository_key] = spec.repository
    if spec.domain_owner:
        params["domainOwner"] = spec.domain_owner
    if ref.namespace is not None:  # botocore rejects namespace=None: omit the key instead
        params["namespace"] = ref.namespace
    return params


def build_request(spec: JobSpec, chunk: Chunk) -> dict[str, Any]:
    """The keyword arguments of the API call that sends `chunk` as the job's operation."""
    op = spec.operation
    if op is Operation.COPY:
        params = _base(spec, chunk.ref, "")
        params["sourceRepository"] = spec.repository
        params["destinationRepository"] = spec.destination_repository
        params["allowOverwrite"] = spec.allow_overwrite
        params["includeFromUpstream"] = spec.include_from_upstream
        # versions XOR versionRevisions: pin when every version of the chunk has a revision
        if chunk.revisions and len(chunk.revisions) == len(chunk.versions):
            params["versionRevisions"] = dict(chunk.revisions)
        else:
            params["versions"] = list(chunk.versions)
        return params
    params = _base(spec, chunk.ref)
    if op is Operation.DELETE_PACKAGES:
        return params
    params["versions"] = list(chunk.versions)
    if op.pins_revisions and chunk.revisions:
        params["versionRevisions"] = dict(chunk.revisions)
    if spec.expected_status:
        params["expectedStatus"] = spec.expected_status
    if op is Operation.SET_STATUS:
        params["targetStatus"] = spec.target_status
    return params


class AwsRegistry:
    """`bulkops.registry.Registry` over a real (or emulated) CodeArtifact endpoint."""

    def __init__(self, client: CodeArtifactClient) -> None:
        self._client = client

    async def run_chunk(self, spec: JobSpec, chunk: Chunk) -> CallResult:
        params = build_request(spec, chunk)
        c = self._client
        op = spec.operation
        try:
            with translated(op.api_name):
                if op is Operation.DELETE:
                    resp: Any = await c.delete_package_versions(**params)
                elif op is Operation.DISPOSE:
                    resp = await c.dispose_package_versions(**params)
                elif op is Operation.SET_STATUS:
                    resp = await c.update_package_versions_status(**params)
                elif op is Operation.COPY:
                    resp = await c.copy_package_versions(**params)
                else:
                    resp = await c.delete_package(**params)
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
        params = _base(spec, ref, "")
        params["repository"] = repository
        params["packageVersion"] = version
        try:
            with translated("DescribePackageVersion"):
                resp = await self._client.describe_package_version(**params)
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
        params = _where(where)
        params["maxResults"] = page_size
        for key, value in (
            ("format", query.format),
            ("namespace", query.namespace),
            ("packagePrefix", query.package_prefix),
            ("nextToken", token),
        ):
            if value is not None:  # botocore rejects None: omit the key instead
                params[key] = value
        with translated("ListPackages"):
            resp: Any = await self._client.list_packages(**params)
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
        params = _where(where, ref)
        params["maxResults"] = page_size
        params["sortBy"] = "PUBLISHED_TIME"
        for key, value in (("status", status), ("originType", origin_type), ("nextToken", token)):
            if value is not None:
                params[key] = value
        try:
            with translated("ListPackageVersions"):
                resp: Any = await self._client.list_package_versions(**params)
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
        params = _where(where, ref)
        params["packageVersion"] = version
        try:
            with translated("DescribePackageVersion"):
                resp: Any = await self._client.describe_package_version(**params)
        except ResourceMissing as exc:
            if exc.resource_type in ("repository", "domain"):
                raise
            return None
        published = resp["packageVersion"].get("publishedTime")
        return published if isinstance(published, datetime) else None


def _where(where: Location, ref: PackageRef | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"domain": where.domain, "repository": where.repository}
    if where.domain_owner:
        params["domainOwner"] = where.domain_owner
    if ref is not None:
        params["format"], params["package"] = ref.format, ref.package
        if ref.namespace is not None:
            params["namespace"] = ref.namespace
    return params


def _all_not_found(chunk: Chunk, exc: ResourceMissing) -> CallResult:
    """Every version of the chunk as NOT_FOUND, with the service's message."""
    error = {"errorCode": "NOT_FOUND", "errorMessage": exc.reason or str(exc)}
    return CallResult(failed={v: dict(error) for v in chunk.versions})
