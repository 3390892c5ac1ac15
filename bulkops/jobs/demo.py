"""`bulkops demo`: a realistic cleanup on the embedded emulator, with the real engine, end to end.

Three jobs run one after another against a generated repository, each through the same
path as `bulkops <operation> --execute` (manifest → plan → journal → engine → report):

1. archive every Published version older than a year, keeping each package's newest three;
2. dispose the pre-releases among what was just archived (expected status Archived);
3. copy the 2.x release line of a few packages into the `release` repository.

After each job the report is printed and checked against the emulator's ground truth.
Each job is printed as the `bulkops` command that runs it, and the emulator as the
`bulkops emulator` command that serves the same data and faults, so the demo can be
replayed by hand.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TextIO

import anyio
import structlog

from bulkops.aws.session import AwsSettings
from bulkops.emulator import FaultConfig, QuotaConfig, RunningEmulator, run_emulator
from bulkops.engine.types import EngineSettings, RunResult, Stats, StopSignal
from bulkops.jobs.demo_steps import (
    DemoStep,
    Key,
    emulator_command,
    fault_words,
    step_command,
    steps,
)
from bulkops.jobs.job import Job
from bulkops.jobs.prepare import header_for, prepare
from bulkops.jobs.progress import ProgressMode, show_progress
from bulkops.jobs.start import run_new
from bulkops.journal.location import open_store
from bulkops.model import Operation
from bulkops.report.merge import DONE_OUTCOMES
from bulkops.report.render import render
from bulkops.report.stream import last_records_of, packages_of

log = structlog.get_logger("bulkops.jobs.demo")


def _write_manifest(path: Path, rows: list[tuple[Key, str]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for (ref, version), revision in rows:
            row = {**ref.to_dict(), "version": version, "revision": revision}
            f.write(json.dumps(row) + "\n")


async def _run_step(
    step: DemoStep,
    emu: RunningEmulator,
    workdir: Path,
    number: int,
    settings: EngineSettings,
    progress: ProgressMode,
    interval: float,
    out: TextIO,
) -> bool:
    say = partial(print, file=out, flush=True)
    rows = step.select(emu)
    name = f"{number}-{step.spec.operation.value}"
    manifest, checkpoint = workdir / f"{name}.jsonl", workdir / f"{name}.journal"
    say(f"\n── Step {number}: {step.title}: {len(rows)} versions ──")
    if not rows:
        say("nothing to do in this repository")
        return True
    _write_manifest(manifest, rows)
    replay = workdir / "replay" / f"{name}.journal"  # beside, not over, the demo's journal
    say(f"$ {step_command(step.spec, manifest, replay)}")
    prepared = await prepare(
        step.spec, str(manifest), manifest_format="jsonl", spool_dir=workdir, checkpoint=checkpoint
    )
    header = header_for(prepared)
    aws = AwsSettings(
        region="us-east-1",
        endpoint_url=emu.endpoint_url,
        static_credentials=("demo", "demo"),  # the emulator checks no signature
        max_pool_connections=settings.most_in_flight + 8,
    )
    stop, stats = StopSignal(), Stats()
    structlog.contextvars.bind_contextvars(
        job_id=header.job_id, operation=header.spec.operation.value
    )
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(show_progress, stats, progress, interval)
        result: RunResult = await run_new(
            Job(step.spec, checkpoint, settings, aws), header, stop, stats
        )
        tg.cancel_scope.cancel()
    took = time.monotonic() - started
    await render(open_store(checkpoint), "table", out)
    say(
        f"{stats.calls} calls in {took:.1f}s ({stats.calls / took:.1f}/s), "
        f"{stats.throttled} throttled, {stats.retries} retried; checkpoint {checkpoint}"
    )
    agrees = await _agrees(step, emu, checkpoint, rows, out)
    return result.fatal is None and result.stopped is None and agrees


async def _agrees(
    step: DemoStep,
    emu: RunningEmulator,
    checkpoint: Path,
    rows: list[tuple[Key, str]],
    out: TextIO,
) -> bool:
    """Compare the journal's report with the emulator's ground truth, version by version."""
    say = partial(print, file=out, flush=True)
    store = open_store(checkpoint)
    _, last, count = await last_records_of(store)
    truth = emu.versions(step.repository)
    source = emu.versions("main")
    done = failed = mismatched = 0
    async for pkg in packages_of(store, last, count):
        for version, (outcome, *_rest) in pkg.versions.items():
            view = truth.get((pkg.ref, version))
            if outcome in DONE_OUTCOMES:
                done += 1
                want = step.expect_status or source[(pkg.ref, version)].status
                ok = view is not None and view.status == want
                if step.spec.operation is Operation.COPY and view is not None:
                    ok = ok and view.revision == source[(pkg.ref, version)].revision
            else:
                failed += 1
                ok = True
            mismatched += not ok
    planned = len(rows)
    verdict = "agrees" if mismatched == 0 and done + failed == planned else "DISAGREES"
    say(
        f"ground truth {verdict}: {done} versions reported done are "
        f"{step.expect_status or 'present with the source revision'} in {step.repository!r}; "
        f"{failed} reported failed; {planned} planned"
    )
    return verdict == "agrees"


async def run_demo(
    *,
    packages: int,
    versions: int,
    seed: int,
    faults: bool,
    workdir: Path,
    progress: ProgressMode,
    progress_interval: float = 2.0,
    out: TextIO,
) -> int:
    """Run the three demo jobs, telling `out` what they do; 0 when every report matched
    the ground truth."""
    say = partial(print, file=out, flush=True)
    await anyio.Path(workdir).mkdir(mode=0o700, parents=True, exist_ok=True)
    fault_config = (
        FaultConfig(latency_ms=20, jitter=0.5, error_rate=0.01, skip_rate=0.002)
        if faults
        else FaultConfig()
    )
    settings = EngineSettings(rate=100.0, copy_rate=5.0, seed=seed)
    say(f"Generating {packages} packages × {versions} versions in an embedded emulator…")
    say(fault_words(fault_config))
    say(
        "To replay the jobs by hand, serve the same data in another shell and point bulkops "
        "at it, then run the `$ bulkops` lines below in order:\n"
        f"  {emulator_command(packages, versions, seed, fault_config)}\n"
        "  export AWS_ENDPOINT_URL_CODEARTIFACT=http://127.0.0.1:8911 "
        "AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1"
    )
    async with run_emulator(
        generate=(packages, versions), seed=seed, quotas=QuotaConfig(), faults=fault_config
    ) as emu:
        statuses = emu.counters()["versions_by_status"]
        say(f"emulator {emu.endpoint_url}: {json.dumps(statuses)}")
        ok = True
        for number, step in enumerate(steps("acme"), 1):
            ok = (
                await _run_step(
                    step, emu, workdir, number, settings, progress, progress_interval, out
                )
                and ok
            )
        counters = emu.counters()
        say(
            "\nemulator counters: calls "
            + json.dumps({k: v for k, v in counters["calls"].items() if v})
            + ", throttled "
            + json.dumps({k: v for k, v in counters["throttled"].items() if v})
            + ", faults "
            + json.dumps(counters["faults"])
        )
    say(
        f"\nJournals and manifests are in {workdir}; try: "
        f"bulkops report {workdir}/1-set-status.journal --format jsonl"
    )
    return 0 if ok else 1


def default_workdir() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("bulkops-checkpoints") / f"demo-{stamp}"
