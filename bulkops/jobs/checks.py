"""The checks before a job's first change: the domain and repositories exist, with a read call.

DescribeRepository is retried like any call (throttles, 5xx, timeouts) within a short
budget; an absent domain or repository is a usage error (exit 2), before any journal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import anyio
import anyio.to_thread
import structlog

from bulkops.aws.adapter import AwsRegistry
from bulkops.aws.session import AwsSettings, open_codeartifact
from bulkops.engine.limits import AdaptiveRate, RetryPolicy
from bulkops.engine.retry import CallRunner, GaveUp
from bulkops.engine.types import (
    EngineSettings,
)
from bulkops.errors import (
    ResourceMissing,
    Unreachable,
)
from bulkops.model import JobSpec, Operation
from bulkops.registry import Location

log = structlog.get_logger("bulkops.jobs.checks")


CHECK_RETRY = RetryPolicy(max_attempts=4, budget=60.0)


async def check_repositories(
    registry: AwsRegistry,
    spec: JobSpec,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> None:
    """Check with DescribeRepository (a read) that the job's domain and repositories exist.

    Run before a job writes its journal or sends anything, and by the dry run: a wrong
    name ends the job here (exit 2) with nothing to resume. The calls go through the
    engine's `CallRunner`; a check that gets no answer within its retries is
    `Unreachable` (75): nothing was sent, trying later may work.
    """
    copy = spec.operation is Operation.COPY
    repositories = [("--source-repository" if copy else "--repository", spec.repository)]
    if spec.destination_repository is not None:
        repositories.append(("--destination-repository", spec.destination_repository))
    defaults = EngineSettings()
    scope = AdaptiveRate("read", defaults.read_rate)
    runner = CallRunner(CHECK_RETRY, defaults.call_timeout, stopping=lambda: False, sleep=sleep)
    for option, name in repositories:
        where = Location(spec.domain, name, spec.domain_owner)
        try:
            await runner.call(scope, partial(registry.describe_repository, where))
        except ResourceMissing as exc:
            raise ResourceMissing(
                f"repository {spec.domain}/{name} ({option}) does not exist or is not "
                f"visible to these credentials: {exc}; nothing was sent"
            ) from exc
        except GaveUp as exc:
            raise Unreachable(
                f"cannot check that repository {spec.domain}/{name} exists "
                f"({exc.last}); nothing was sent, try again later"
            ) from exc.last


async def check_target(aws: AwsSettings, spec: JobSpec) -> float:
    """The dry run's check: a client as a run would make it, then `check_repositories`;
    the seconds per check call, connection set-up included (the estimate's latency)."""
    async with open_codeartifact(aws, inputs_checked=True) as registry:
        started = anyio.current_time()
        await check_repositories(registry, spec)
        calls = 1 + (spec.destination_repository is not None)
        return (anyio.current_time() - started) / calls
