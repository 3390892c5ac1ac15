"""bulkops run inside a host's own Python process: the job is done and the host's state kept."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest

from bulkops.emulator import QuotaConfig, run_emulator
from tests.cli_support import cli_env, rows_for, write_manifest

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

# A host that tuned its own collector (and, with "freeze", froze its own objects) runs a
# job through bulkops' click command, then writes down its collector's state.
HOST = """\
import gc, json, sys
from bulkops.cli import cli

out, freeze, argv = sys.argv[1], sys.argv[2] == "freeze", sys.argv[3:]
gc.set_threshold(1234, 11, 12)
if freeze:
    gc.freeze()
frozen = gc.get_freeze_count()
try:
    code = cli.main(argv, prog_name="bulkops", standalone_mode=False)
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "threshold": gc.get_threshold(), "frozen_before": frozen,
               "frozen_after": gc.get_freeze_count()}, f)
"""


@pytest.mark.parametrize("freeze", ["freeze", "no-freeze"])
async def test_a_job_leaves_the_host_collector_settings_and_frozen_objects_as_it_found_them(
    tmp_path: Path, freeze: str
) -> None:
    async with run_emulator(generate=(4, 30), quotas=QuotaConfig.off()) as emu:
        keys = sorted(k for k, v in emu.versions("main").items() if v.status == "Published")
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for(keys))
        argv = [
            "set-status",
            "--domain",
            "acme",
            "--repository",
            "main",
            "--target-status",
            "Archived",
        ]
        argv += ["--manifest", str(manifest), "--checkpoint", str(tmp_path / "cp.journal")]
        out = tmp_path / "host.json"
        done = await anyio.run_process(
            [sys.executable, "-c", HOST, str(out), freeze, *argv, "--execute"],
            env=cli_env(emu),
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        host = json.loads(out.read_text())
        assert host["code"] == 0, done.stderr.decode()[-2000:]
        assert {emu.versions("main")[k].status for k in keys} == {"Archived"}
    assert host["threshold"] == [1234, 11, 12]
    if freeze == "freeze":  # the host's frozen objects stay frozen (no unfreeze undoes them)
        assert host["frozen_after"] >= host["frozen_before"] > 0
    else:  # what the run froze is collectable again
        assert host["frozen_before"] == 0
        assert host["frozen_after"] == 0
