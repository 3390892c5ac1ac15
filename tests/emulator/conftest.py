"""Fixtures for the emulator tests: a served emulator and a real aioboto3 client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from emulator_helpers import client_for

from bulkops.emulator import QuotaConfig, RunningEmulator, run_emulator


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    """8 packages (one per format) × 20 versions in main, empty release, no quotas."""
    async with run_emulator(generate=(8, 20), quotas=QuotaConfig.off()) as running:
        yield running


@pytest_asyncio.fixture
async def client(emu: RunningEmulator) -> AsyncIterator[Any]:
    """A real aioboto3 client on the emulator, one attempt per call."""
    async with client_for(emu.endpoint_url) as c:
        yield c
