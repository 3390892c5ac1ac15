"""The emulator's Python API: `run_emulator()` serves one emulated account until the block ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from bulkops.emulator.faults import FaultConfig
from bulkops.emulator.generate import generate as generate_data
from bulkops.emulator.quota import QuotaConfig
from bulkops.emulator.server import Emulator
from bulkops.emulator.snapshot import export_state, load_state, read_seed_file
from bulkops.emulator.state import (
    DEFAULT_ACCOUNT,
    DEFAULT_DOMAIN,
    Domain,
    Repository,
    State,
    VersionView,
)
from bulkops.model import PackageRef


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything that defines an emulator run; defaults give AWS's quotas and no faults."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    seed: int = 0
    generate: tuple[int, int] | None = None  # packages × versions into "main"
    seed_file: str | Path | None = None
    quotas: QuotaConfig | None = field(default_factory=QuotaConfig)  # None: no quotas
    faults: FaultConfig | None = field(default_factory=FaultConfig)  # None: no faults
    account_id: str = DEFAULT_ACCOUNT


def build_state(config: EmulatorConfig) -> State:
    """The initial state: the seed file if any, else domain acme with empty main and release."""
    if config.seed_file is not None:
        state = read_seed_file(config.seed_file, config.seed, config.account_id)
    else:
        state = State(config.account_id, config.seed)
        state.add_repository("main")
        state.add_repository("release")
    if config.generate is not None:
        packages, versions = config.generate
        generate_data(state, packages, versions)
    return state


class RunningEmulator:
    """A served emulator: its address, ground truth and live settings."""

    def __init__(self, core: Emulator, host: str, port: int) -> None:
        self.core = core
        self.host = host
        self.port = port
        self.endpoint_url = f"http://{host}:{port}"

    @property
    def account_id(self) -> str:
        return self.core.state.account_id

    @property
    def state(self) -> State:
        return self.core.state

    # ---- ground truth ---------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Domains → repositories → packages → versions, as JSON-able data (loadable again)."""
        return export_state(self.core.state)

    def load_state(self, data: dict[str, Any]) -> None:
        """Replace the whole state with exported or seed data."""
        self.core.state = load_state(data, self.core.state.seed, self.account_id)

    def counters(self) -> dict[str, Any]:
        """calls, throttled, errors (per operation/code), faults (per kind), in-flight, statuses."""
        return self.core.counters()

    def reset_counters(self) -> None:
        self.core.reset_counters()

    def versions(
        self, repository: str, domain: str = DEFAULT_DOMAIN
    ) -> dict[tuple[PackageRef, str], VersionView]:
        """Every version of a repository: (PackageRef, version) → VersionView."""
        return self.core.state.versions(repository, domain)

    def version(
        self,
        repository: str,
        format: str,
        namespace: str | None,
        package: str,
        version: str,
        domain: str = DEFAULT_DOMAIN,
    ) -> VersionView | None:
        """One version's ground truth, or None if it does not exist."""
        key = (PackageRef(format, namespace, package), version)
        return self.core.state.versions(repository, domain).get(key)

    def packages(self, repository: str, domain: str = DEFAULT_DOMAIN) -> list[PackageRef]:
        return list(self.core.state.domains[domain].repositories[repository].packages)

    # ---- building test data -----------------------------------------------------------

    def add_domain(self, name: str, owner: str | None = None) -> Domain:
        return self.core.state.add_domain(name, owner)

    def add_repository(self, name: str, domain: str = DEFAULT_DOMAIN) -> Repository:
        return self.core.state.add_repository(name, domain)

    def add_version(
        self,
        repository: str,
        format: str,
        namespace: str | None,
        package: str,
        version: str,
        status: str = "Published",
        *,
        domain: str = DEFAULT_DOMAIN,
        revision: str | None = None,
        published_time: float | None = None,
        origin_type: str = "INTERNAL",
    ) -> str:
        """Publish one version (creating its package) and return its revision.

        The repository must exist (see `add_repository`); names must pass the API's rules.
        """
        repo = self.core.state.domains[domain].repositories[repository]
        return self.core.state.add_version(
            repo,
            PackageRef(format, namespace, package),
            version,
            status,
            revision=revision,
            published_time=published_time,
            origin_type=origin_type,
            domain=domain,
        )

    # ---- live settings --------------------------------------------------------------

    @property
    def quotas(self) -> QuotaConfig:
        return self.core.quotas.config

    @property
    def faults(self) -> FaultConfig:
        return self.core.faults.config

    def set_quotas(self, quotas: QuotaConfig | dict[str, Any]) -> None:
        """New quotas while serving: a QuotaConfig, or a dict merged over the current one."""
        if isinstance(quotas, dict):
            quotas = QuotaConfig.from_dict(quotas, self.quotas)
        self.core.quotas.configure(quotas)

    def set_faults(self, faults: FaultConfig | dict[str, Any]) -> None:
        """New faults while serving: a FaultConfig, or a dict merged over the current one."""
        if isinstance(faults, dict):
            faults = FaultConfig.from_dict(faults, self.faults)
        self.core.faults.configure(faults)


def _connectable(host: str) -> str:
    """The host a client should dial for a bind address."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - mapping a bind-all address, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@asynccontextmanager
async def run_emulator(
    config: EmulatorConfig | None = None, /, **overrides: Any
) -> AsyncIterator[RunningEmulator]:
    """Serve an emulator for the duration of the block.

    `run_emulator(host=..., port=0, seed=0, generate=(50, 300), seed_file=None,
    quotas=QuotaConfig(), faults=FaultConfig(), account_id=...)`, or pass an EmulatorConfig
    (keywords then override its fields).
    """
    config = replace(config or EmulatorConfig(), **overrides)
    core = Emulator(
        build_state(config),
        config.quotas if config.quotas is not None else QuotaConfig.off(),
        config.faults if config.faults is not None else FaultConfig(),
    )
    server = web.Server(core.handle, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
        await site.start()
        port = runner.addresses[0][1]
        yield RunningEmulator(core, _connectable(config.host), port)
    finally:
        core.stop()
        await runner.cleanup()
