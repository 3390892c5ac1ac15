"""The CodeArtifact adapter: builds requests with aioboto3 and translates every botocore error once.

Retry ownership: the SDK makes exactly one attempt per call (`total_max_attempts=1`);
throttles, 5xx, 409 and network errors surface as `bulkops.errors.CallFailed` and the
engine alone decides when and whether to send again.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aioboto3
import aiohttp
import botocore.session
import structlog
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoAuthTokenError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from bulkops import __version__
from bulkops.errors import (
    AccessDenied,
    Conflict,
    FatalCall,
    NetworkError,
    QuotaExceeded,
    RequestRejected,
    ResourceMissing,
    ServerError,
    Throttled,
    UsageError,
)
from bulkops.log import register_secret, register_url_password
from bulkops.model import CallResult, Chunk, JobSpec, Operation, PackageRef, VersionState
from bulkops.registry import Location, PackageQuery, VersionPage, VersionSummary

if TYPE_CHECKING:
    from types_aiobotocore_codeartifact import CodeArtifactClient

log = structlog.get_logger("bulkops.aws.session")

_SECRET_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_SECRET_SETTINGS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """Where and how to reach CodeArtifact; None means botocore's own resolution."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    max_pool_connections: int = 32
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    # (key id, secret) for endpoints that check no signature, such as the emulator
    static_credentials: tuple[str, str] | None = None


def _config(settings: AwsSettings, inputs_checked: bool) -> AioConfig:
    return AioConfig(
        # One attempt: the engine owns retries (CODEARTIFACT.md, "Retry ownership").
        retries={"total_max_attempts": 1, "mode": "standard"},
        # a job's every value was checked against these same shapes before its first
        # call; checking 100 versions again on every call costs ~7% of a call's CPU
        parameter_validation=not inputs_checked,
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        user_agent_extra=f"bulkops/{__version__}",
    )


@asynccontextmanager
async def open_codeartifact(
    settings: AwsSettings, *, inputs_checked: bool = False
) -> AsyncIterator[AwsRegistry]:
    """A registry backed by one aioboto3 CodeArtifact client, closed on exit.

    Setting the client up resolves the region, the profile and the credentials: a problem
    there is `UsageError` (region, profile, config) or `AccessDenied` (credentials).
    `inputs_checked`: every value the calls will carry has been validated against the
    API's shapes already (a job's spec and chunk list), so botocore need not do it again.
    """
    register_known_secrets(settings)
    async with AsyncExitStack() as stack:
        try:
            keys = settings.static_credentials
            session = aioboto3.Session(
                profile_name=settings.profile,
                region_name=resolve_region(settings),
                aws_access_key_id=keys[0] if keys else None,
                aws_secret_access_key=keys[1] if keys else None,
            )
            client = await stack.enter_async_context(
                session.client(
                    "codeartifact",
                    endpoint_url=settings.endpoint_url,
                    config=_config(settings, inputs_checked),
                )
            )
            # Resolved now, not at the first call: a job without credentials leaves no journal.
            found = session.get_credentials()
            if inspect.isawaitable(found):
                found = await found
            if found is not None:
                await watch_credentials(found)
        except BotoCoreError as exc:
            raise setup_error(exc) from exc
        if found is None:
            raise AccessDenied("no AWS credentials found (environment, profile, or role)")
        client.meta.events.register("after-call.codeartifact", _log_answer)
        yield AwsRegistry(client)


def register_known_secrets(settings: AwsSettings) -> None:
    """Register the credentials bulkops can see before botocore resolves any: env, files, URL."""
    for name in (*_SECRET_VARIABLES, "AWS_SECURITY_TOKEN"):
        register_secret(os.environ.get(name))
    if settings.static_credentials:
        for value in settings.static_credentials:
            register_secret(value)
    register_url_password(settings.endpoint_url)
    for name, value in os.environ.items():
        if name.startswith("AWS_ENDPOINT_URL"):
            register_url_password(value)
    try:  # every profile's static keys: a role chain signs with a source profile's
        profiles = botocore.session.get_session().full_config.get("profiles", {})
    except BotoCoreError:
        return  # a broken config file fails the client set-up, with its own message
    for profile in profiles.values():
        for key in _SECRET_SETTINGS:
            value = profile.get(key)
            register_secret(value if isinstance(value, str) else None)


def _register_frozen(frozen: Any) -> None:
    register_secret(getattr(frozen, "access_key", None))
    register_secret(getattr(frozen, "secret_key", None))
    register_secret(getattr(frozen, "token", None))


async def watch_credentials(credentials: Any) -> None:
    """Register `credentials` now, and every set a refresh brings, before a request uses it.

    The signer asks for frozen credentials before every request; a refreshable set (assume
    role, SSO, credential_process, container or instance metadata) refreshes inside that
    call, so the wrapper sees each new set as it arrives.
    """
    original: Callable[[], Awaitable[Any]] = credentials.get_frozen_credentials

    async def get_frozen_credentials() -> Any:
        frozen = await original()
        _register_frozen(frozen)
        return frozen

    credentials.get_frozen_credentials = get_frozen_credentials
    await get_frozen_credentials()


def _log_answer(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
    """One debug line per answer: operation, HTTP status, request id, error code."""
    meta = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
    error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
    log.debug(
        "aws_answer",
        operation=getattr(model, "name", None),
        status=getattr(http_response, "status_code", None),
        request_id=meta.get("RequestId"),
        error=error.get("Code"),
    )


def resolve_region(settings: AwsSettings) -> str | None:
    """--region, else AWS_REGION, else None (botocore's AWS_DEFAULT_REGION, then the profile).

    botocore reads only AWS_DEFAULT_REGION; the AWS CLI and the other SDKs honour
    AWS_REGION too, above it, and Kubernetes and Batch examples set only AWS_REGION.
    """
    return settings.region or os.environ.get("AWS_REGION") or None


# Credentials that cannot be found or fetched: every call would be refused.
_CREDENTIAL_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    SSOError,
    NoAuthTokenError,
)


def setup_error(exc: BotoCoreError) -> Exception:
    """The bulkops error for a failure to set up the AWS session or client."""
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return AccessDenied(f"cannot get AWS credentials: {exc}")
    if isinstance(exc, NoRegionError):
        return UsageError(
            "no AWS region: pass --region, or set AWS_REGION or a region in the AWS "
            f"config profile ({exc})"
        )
    if isinstance(exc, ProfileNotFound):
        return UsageError(f"AWS profile not found: {exc} (check --profile and AWS_PROFILE)")
    return UsageError(f"cannot set up the AWS client: {type(exc).__name__}: {exc}")


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
            if op is Operation.DELETE:
                resp: Any = await c.delete_package_versions(**kw)
            elif op is Operation.DISPOSE:
                resp = await c.dispose_package_versions(**kw)
            elif op is Operation.SET_STATUS:
                resp = await c.update_package_versions_status(**kw)
            elif op is Operation.COPY:
                resp = await c.copy_package_versions(**kw)
            else:
                try:
                    resp = await c.delete_package(**kw)
                except ClientError as exc:
                    if _code(exc) == "ResourceNotFoundException" and _is_package(exc):
                        return CallResult(deleted_package=None)
                    raise
                return CallResult(deleted_package=dict(resp.get("deletedPackage") or {}))
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException" and _is_package(exc):
                # one absent package is per-version data (NOT_FOUND), not a reason to stop
                return _all_not_found(chunk, exc)
            raise translate(exc, op.api_name) from exc
        except _WIRE_ERRORS as exc:
            raise translate(exc, op.api_name) from exc
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
            resp = await self._client.describe_package_version(**kw)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise translate(exc, "DescribePackageVersion") from exc
        except _WIRE_ERRORS as exc:
            raise translate(exc, "DescribePackageVersion") from exc
        found = resp["packageVersion"]
        return VersionState(found.get("revision"), str(found.get("status", "")))

    async def describe_repository(self, where: Location) -> None:
        """Check that the domain and repository exist: `ResourceMissing` (exit 2) if not."""
        try:
            await self._client.describe_repository(**_where(where))
        except _WIRE_ERRORS as exc:
            raise translate(exc, "DescribeRepository") from exc

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
        try:
            resp: Any = await self._client.list_packages(**kw)
        except _WIRE_ERRORS as exc:
            raise translate(exc, "ListPackages") from exc
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
            resp: Any = await self._client.list_package_versions(**kw)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException" and _is_package(exc):
                return VersionPage((), None, None)  # deleted since it was listed
            raise translate(exc, "ListPackageVersions") from exc
        except _WIRE_ERRORS as exc:
            raise translate(exc, "ListPackageVersions") from exc
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
            resp: Any = await self._client.describe_package_version(**kw)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException" and not _is_repository(exc):
                return None
            raise translate(exc, "DescribePackageVersion") from exc
        except _WIRE_ERRORS as exc:
            raise translate(exc, "DescribePackageVersion") from exc
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


def _is_repository(exc: ClientError) -> bool:
    return str(exc.response.get("resourceType", "")).lower() in ("repository", "domain")


# What a call can fail with on the wire; anything else is a bug and propagates as it is.
_WIRE_ERRORS = (BotoCoreError, ClientError, aiohttp.ClientError, TimeoutError, ConnectionError)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_package(exc: ClientError) -> bool:
    return str(exc.response.get("resourceType", "")).lower() == "package"


def _all_not_found(chunk: Chunk, exc: ClientError) -> CallResult:
    """Every version of the chunk as NOT_FOUND, with the service's message."""
    message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    error = {"errorCode": "NOT_FOUND", "errorMessage": message}
    return CallResult(failed={v: dict(error) for v in chunk.versions})


def translate(exc: Exception, operation: str) -> Exception:
    """The bulkops error for a botocore/aiohttp failure of `operation`."""
    if isinstance(exc, ClientError):
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        text = f"{operation}: {code}: {message}"
        if code == "ThrottlingException" or status == 429:
            return Throttled(text, _retry_after(exc))
        if code == "AccessDeniedException" or status == 403:
            return AccessDenied(text)
        if code == "ServiceQuotaExceededException" or status == 402:
            return QuotaExceeded(text)
        if code == "ValidationException" or status == 400:
            return RequestRejected(text)
        if code == "ResourceNotFoundException" or status == 404:
            return ResourceMissing(text)
        if code == "ConflictException" or status == 409:
            return Conflict(text, code or "ConflictException")
        if status >= 500 or code == "InternalServerException":
            return ServerError(text, code or "InternalServerException")
        return FatalCall(text)
    if isinstance(exc, ParamValidationError):
        return RequestRejected(f"{operation}: {exc}")
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return AccessDenied(f"{operation}: cannot get AWS credentials: {exc}")
    if isinstance(exc, _TRANSPORT_ERRORS):
        return NetworkError(f"{operation}: {type(exc).__name__}: {exc}")
    # any other botocore error (a bad config, an unparseable answer) fails the same way again
    return FatalCall(f"{operation}: {type(exc).__name__}: {exc}")


# Failures of the connection itself: the request may or may not have arrived; send again.
_TRANSPORT_ERRORS = (
    HTTPClientError,
    BotoConnectionError,
    aiohttp.ClientError,
    TimeoutError,
    ConnectionError,
)


def _retry_after(exc: ClientError) -> float | None:
    value: Any = exc.response.get("retryAfterSeconds")
    if value is None:
        value = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
