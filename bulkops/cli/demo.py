"""`bulkops demo`: a realistic cleanup against an embedded emulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import click

from bulkops.cli.options import log_options, setup_logs, with_options


@click.command(
    "demo",
    epilog="""\b
Example:
  bulkops demo --packages 200 --versions 30 --no-faults""",
)
@click.option(
    "--packages",
    type=click.IntRange(10, 20_000),
    default=400,
    show_default=True,
    help="Packages to generate, across all eight formats.",
)
@click.option(
    "--versions",
    type=click.IntRange(5, 1000),
    default=30,
    show_default=True,
    help="Versions per package.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of data and faults.")
@click.option(
    "--faults/--no-faults",
    default=True,
    show_default=True,
    help="Inject latency, a few 500s and SKIPPED versions, as a real service has.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where journals and manifests go (default: bulkops-checkpoints/demo-TIME).",
)
@with_options(*log_options())
def demo_cmd(**kw: Any) -> None:
    """Run a realistic cleanup on an embedded emulator: no AWS account, no network.

    Generates a repository, then archives old versions, disposes archived pre-releases
    and copies a release line to another repository, each as a real bulkops job with
    progress, its report, and a check of the report against the emulator's ground truth.
    """
    from bulkops.jobs.demo import default_workdir, run_demo

    setup_logs(kw)
    code = anyio.run(
        lambda: run_demo(
            packages=kw["packages"],
            versions=kw["versions"],
            seed=kw["seed"],
            faults=kw["faults"],
            workdir=kw["workdir"] or default_workdir(),
            progress=kw["progress"],
            progress_interval=kw["progress_interval"],
            out=sys.stdout,
        ),
        backend="asyncio",
    )
    sys.exit(code)
