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
import re
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import click
import structlog

from bulkops.aws.session import AwsSettings
from bulkops.emulator import FaultConfig, QuotaConfig, RunningEmulator, run_emulator
from bulkops.engine.types import EngineSettings, RunResult, Stats, StopSignal
from bulkops.jobs.progress import ProgressMode, show_progress
from bulkops.jobs.start import header_for, prepare, run_new
from bulkops.journal.location import open_store
from bulkops.model import JobSpec, Operation, PackageRef
from bulkops.report.merge import DONE_OUTCOMES
from bulkops.report.render import render
from bulkops.report.stream import last_records_of, packages_of

log = structlog.get_logger("bulkops.jobs.demo")

YEAR = 365.25 * 86400
# Pre-release markers of every format the emulator generates (semver, PEP 440, Maven, ...).
PRERELEASE = re.compile(
    r"(?i)(-|\.)(alpha|beta|rc|next|preview|pre|snapshot|m\d)|\d(a|b|rc|\.dev)\d"
)

Key = tuple[PackageRef, str]


@dataclass(frozen=True, slots=True)
class DemoStep:
    title: str
    spec: JobSpec
    select: Callable[[RunningEmulator], list[tuple[Key, str]]]  # (key, revision)
    expect_status: str  # what the ground truth must show for every version reported done
    repository: str  # where to look for it


def _archive_old(emu: RunningEmulator) -> list[tuple[Key, str]]:
    versions = emu.versions("main")
    cutoff = time.time() - YEAR
    by_package: dict[PackageRef, list[tuple[float, str]]] = {}
    for (ref, version), view in versions.items():
        by_package.setdefault(ref, []).append((view.published_time, version))
    chosen = []
    for ref, entries in by_package.items():
        keep = {v for _, v in sorted(entries, reverse=True)[:3]}  # the newest three stay
        for published, version in entries:
            view = versions[(ref, version)]
            if version not in keep and published < cutoff and view.status == "Published":
                chosen.append(((ref, version), view.revision))
    return sorted(chosen)


def _dispose_prereleases(emu: RunningEmulator) -> list[tuple[Key, str]]:
    return sorted(
        ((key, view.revision))
        for key, view in emu.versions("main").items()
        if view.status == "Archived" and PRERELEASE.search(key[1])
    )


def _copy_release_line(emu: RunningEmulator) -> list[tuple[Key, str]]:
    versions = emu.versions("main")
    packages = sorted({ref for ref, v in versions if v.startswith("2.")})[:12]
    return sorted(
        (key, view.revision)
        for key, view in versions.items()
        if key[0] in packages
        and key[1].startswith("2.")
        and view.status in ("Published", "Unlisted", "Archived")
    )


def steps(domain: str) -> list[DemoStep]:
    return [
        DemoStep(
            "archive Published versions older than a year, keeping each package's newest 3",
            JobSpec(Operation.SET_STATUS, domain, "main", target_status="Archived"),
            _archive_old,
            "Archived",
            "main",
        ),
        DemoStep(
            "dispose the pre-releases just archived (expected status Archived)",
            JobSpec(Operation.DISPOSE, domain, "main", expected_status="Archived"),
            _dispose_prereleases,
            "Disposed",
            "main",
        ),
        DemoStep(
            "copy the 2.x release line of 12 packages from main to release",
            JobSpec(Operation.COPY, domain, "main", destination_repository="release"),
            _copy_release_line,
            "",
            "release",
        ),
    ]


def step_command(spec: JobSpec, manifest: Path, checkpoint: Path) -> str:
    """The `bulkops` command that runs a demo step's job against `bulkops emulator`."""
    argv = ["bulkops", spec.operation.value, "--domain", spec.domain]
    if spec.operation is Operation.COPY:
        argv += ["--source-repository", spec.repository]
        argv += ["--destination-repository", spec.destination_repository or ""]
    else:
        argv += ["--repository", spec.repository]
    argv += ["--manifest", str(manifest)]
    if spec.expected_status:
        argv += ["--expected-status", spec.expected_status]
    if spec.target_status:
        argv += ["--target-status", spec.target_status]
    return shlex.join([*argv, "--checkpoint", str(checkpoint), "--execute"])


def fault_words(faults: FaultConfig) -> str:
    """The faults the demo injects, in words."""
    if faults == FaultConfig():
        return "Faults: none (--no-faults)."
    return (
        f"Faults injected, as a real service has them: {faults.latency_ms:g} ms latency "
        f"(±{faults.jitter:.0%}) per call, 500 InternalServerException on {faults.error_rate:.0%}"
        f" of calls (retried), SKIPPED for {faults.skip_rate:.1%} of versions (sent again); "
        "--no-faults turns them off."
    )


def emulator_command(packages: int, versions: int, seed: int, faults: FaultConfig) -> str:
    """The `bulkops emulator` command serving the demo's data and faults on port 8911."""
    argv = ["bulkops", "emulator", "--port", "8911", "--generate", f"{packages}x{versions}"]
    argv += ["--seed", str(seed)]
    if faults.latency_ms:
        argv += ["--latency-ms", f"{faults.latency_ms:g}", "--jitter", f"{faults.jitter:g}"]
    if faults.error_rate:
        argv += ["--error-rate", f"{faults.error_rate:g}"]
    if faults.skip_rate:
        argv += ["--skip-rate", f"{faults.skip_rate:g}"]
    return shlex.join(argv)


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
) -> bool:
    rows = step.select(emu)
    name = f"{number}-{step.spec.operation.value}"
    manifest, checkpoint = workdir / f"{name}.jsonl", workdir / f"{name}.journal"
    click.echo(f"\n── Step {number}: {step.title}: {len(rows)} versions ──")
    if not rows:
        click.echo("nothing to do in this repository")
        return True
    _write_manifest(manifest, rows)
    replay = workdir / "replay" / f"{name}.journal"  # beside, not over, the demo's journal
    click.echo(f"$ {step_command(step.spec, manifest, replay)}")
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
        result: RunResult = await run_new(prepared, header, checkpoint, settings, aws, stop, stats)
        tg.cancel_scope.cancel()
    took = time.monotonic() - started
    await render(open_store(checkpoint), "table", sys.stdout)
    click.echo(
        f"{stats.calls} calls in {took:.1f}s ({stats.calls / took:.1f}/s), "
        f"{stats.throttled} throttled, {stats.retries} retried; checkpoint {checkpoint}"
    )
    agrees = await _agrees(step, emu, checkpoint, rows)
    return result.fatal is None and result.stopped is None and agrees


async def _agrees(
    step: DemoStep, emu: RunningEmulator, checkpoint: Path, rows: list[tuple[Key, str]]
) -> bool:
    """Compare the journal's report with the emulator's ground truth, version by version."""
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
    click.echo(
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
) -> int:
    """Run the three demo jobs; 0 when every report matched the ground truth."""
    await anyio.Path(workdir).mkdir(mode=0o700, parents=True, exist_ok=True)
    fault_config = (
        FaultConfig(latency_ms=20, jitter=0.5, error_rate=0.01, skip_rate=0.002)
        if faults
        else FaultConfig()
    )
    settings = EngineSettings(rate=100.0, copy_rate=5.0, seed=seed)
    click.echo(f"Generating {packages} packages × {versions} versions in an embedded emulator…")
    click.echo(fault_words(fault_config))
    click.echo(
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
        click.echo(f"emulator {emu.endpoint_url}: {json.dumps(statuses)}")
        ok = True
        for number, step in enumerate(steps("acme"), 1):
            ok = (
                await _run_step(step, emu, workdir, number, settings, progress, progress_interval)
                and ok
            )
        counters = emu.counters()
        click.echo(
            "\nemulator counters: calls "
            + json.dumps({k: v for k, v in counters["calls"].items() if v})
            + ", throttled "
            + json.dumps({k: v for k, v in counters["throttled"].items() if v})
            + ", faults "
            + json.dumps(counters["faults"])
        )
    click.echo(
        f"\nJournals and manifests are in {workdir}; try: "
        f"bulkops report {workdir}/1-set-status.journal --format jsonl"
    )
    return 0 if ok else 1


def default_workdir() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("bulkops-checkpoints") / f"demo-{stamp}"
