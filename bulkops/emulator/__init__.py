"""A local CodeArtifact server speaking the real rest-json wire protocol, for tests and demos.

    async with run_emulator(generate=(50, 300), quotas=QuotaConfig.off()) as emu:
        client = session.client("codeartifact", endpoint_url=emu.endpoint_url)
        ...
        emu.versions("main")  # ground truth

Synchronous callers (click's CliRunner, boto3) use `with emulator_thread(...) as emu:`.

Modules: `runner` (this API), `threaded`, `server` (HTTP pipeline, admin paths), `validate`,
`operations`, `state`, `snapshot`, `quota`, `faults`, `generate`, `wire`, `command` (the CLI).
"""

from bulkops.emulator.faults import FaultConfig
from bulkops.emulator.quota import Quota, QuotaConfig
from bulkops.emulator.runner import EmulatorConfig, RunningEmulator, run_emulator
from bulkops.emulator.state import DEFAULT_ACCOUNT, DEFAULT_DOMAIN, VersionView
from bulkops.emulator.threaded import ThreadedEmulator, emulator_thread

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_DOMAIN",
    "EmulatorConfig",
    "FaultConfig",
    "Quota",
    "QuotaConfig",
    "RunningEmulator",
    "ThreadedEmulator",
    "VersionView",
    "emulator_thread",
    "run_emulator",
]
