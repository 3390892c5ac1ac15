"""The demo's three jobs: what each selects from the emulator, and the commands that replay it.

steps(domain) -> [DemoStep]   archive old Published versions (keeping three per package),
                              dispose the archived pre-releases, copy a 2.x line
step_command / emulator_command / fault_words: the `bulkops` lines printed for a replay
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bulkops.emulator import FaultConfig, RunningEmulator
from bulkops.model import JobSpec, Operation, PackageRef

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
