"""AWS sessions: client settings, region resolution, and credentials masked before any use.

`open_codeartifact` sets a client up and hands out the adapter (`bulkops.aws.adapter`)
over it. Retry ownership: the SDK makes exactly one attempt per call (`total_max_attempts=1`);
throttles, 5xx, 409 and network errors surface as `bulkops.errors.CallFailed` and the
engine alone decides when and whether to send again.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3
import botocore.session
import structlog
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError

from bulkops import __version__
from bulkops.aws.adapter import AwsRegistry
from bulkops.aws.errors import translated_setup
from bulkops.errors import AccessDenied
from bulkops.log import register_secret, register_url_password

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


def client_config(settings: AwsSettings, *, inputs_checked: bool = False) -> AioConfig:
    """The client's botocore settings: one attempt per call, the pool and the timeouts."""
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
        with translated_setup():
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
                    config=client_config(settings, inputs_checked=inputs_checked),
                )
            )
            # Resolved now, not at the first call: a job without credentials leaves no journal.
            found = session.get_credentials()
            if inspect.isawaitable(found):
                found = await found
            if found is not None:
                await watch_credentials(found)
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
