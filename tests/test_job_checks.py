"""The repository check before a job: through the engine's call runner, bounded, and worded."""

from __future__ import annotations

from typing import Any

import pytest

from bulkops.errors import ResourceMissing, ServerError, Throttled, Unreachable
from bulkops.jobs.checks import CHECK_RETRY, check_repositories
from bulkops.model import JobSpec, Operation
from bulkops.registry import Location

pytestmark = pytest.mark.asyncio


class Repositories:
    """Answers DescribeRepository from a script of failures, then from the names it has."""

    def __init__(self, names: set[str], failures: list[Exception] | None = None) -> None:
        self.names = names
        self.failures = list(failures or [])
        self.asked: list[str] = []

    async def describe_repository(self, where: Location) -> None:
        self.asked.append(where.repository)
        if self.failures:
            raise self.failures.pop(0)
        if where.repository not in self.names:
            raise ResourceMissing(f"Repository {where.repository} not found")


async def no_sleep(_: float) -> None:
    return None


def copy_spec() -> JobSpec:
    return JobSpec(
        operation=Operation.COPY, domain="acme", repository="main", destination_repository="rel"
    )


async def test_both_repositories_of_a_copy_are_checked() -> None:
    registry = Repositories({"main", "rel"})
    await check_repositories(registry, copy_spec(), sleep=no_sleep)  # type: ignore[arg-type]
    assert registry.asked == ["main", "rel"]


async def test_a_missing_destination_names_its_option() -> None:
    registry = Repositories({"main"})
    with pytest.raises(ResourceMissing, match=r"acme/rel \(--destination-repository\)"):
        await check_repositories(registry, copy_spec(), sleep=no_sleep)  # type: ignore[arg-type]


async def test_throttles_and_server_errors_are_retried_until_an_answer() -> None:
    failures: list[Exception] = [Throttled("slow down", retry_after=0.01), ServerError("500")]
    registry = Repositories({"main"}, failures)
    spec = JobSpec(operation=Operation.DELETE, domain="acme", repository="main")
    await check_repositories(registry, spec, sleep=no_sleep)  # type: ignore[arg-type]
    assert registry.asked == ["main"] * 3


async def test_a_check_that_never_gets_an_answer_is_unreachable_after_its_tries() -> None:
    registry = Repositories({"main"}, [ServerError("500")] * 10)
    spec: Any = JobSpec(operation=Operation.DELETE, domain="acme", repository="main")
    with pytest.raises(Unreachable, match="nothing was sent, try again later"):
        await check_repositories(registry, spec, sleep=no_sleep)  # type: ignore[arg-type]
    assert len(registry.asked) == CHECK_RETRY.max_attempts
