"""The one place botocore and aiohttp errors become bulkops errors.

    with translated("ListPackages"):
        resp = await client.list_packages(**kw)

Nothing else in bulkops catches a botocore exception: the adapter wraps each call in
`translated`, the session set-up uses `setup_error`, and both chain with `raise … from exc`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
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

# Credentials that cannot be found or fetched: every call would be refused.
_CREDENTIAL_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    TokenRetrievalError,
    SSOError,
    NoAuthTokenError,
)

# What a call can fail with on the wire; anything else is a bug and propagates as it is.
_WIRE_ERRORS = (BotoCoreError, ClientError, aiohttp.ClientError, TimeoutError, ConnectionError)

# Failures of the connection itself: the request may or may not have arrived; send again.
_TRANSPORT_ERRORS = (
    HTTPClientError,
    BotoConnectionError,
    aiohttp.ClientError,
    TimeoutError,
    ConnectionError,
)


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Raise what a call of `operation` fails with on the wire as the bulkops error for it."""
    try:
        yield
    except _WIRE_ERRORS as exc:
        raise translate(exc, operation) from exc


@contextmanager
def translated_setup() -> Iterator[None]:
    """Raise a failure to set up the AWS session or client as `setup_error` says."""
    try:
        yield
    except BotoCoreError as exc:
        raise setup_error(exc) from exc


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


def translate(exc: Exception, operation: str) -> Exception:
    """The bulkops error for a botocore/aiohttp failure of `operation`."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
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
            kind = str(exc.response.get("resourceType", "")).lower() or None
            return ResourceMissing(text, resource_type=kind, reason=message)
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


def _retry_after(exc: ClientError) -> float | None:
    value: Any = exc.response.get("retryAfterSeconds")
    if value is None:
        value = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
