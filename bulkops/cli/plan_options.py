"""The options of `bulkops plan`: where to list, what to select and keep, how fast to list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bulkops.cli.job import cap_options
from bulkops.model import FORMATS, STATUSES
from bulkops.selection.discover import DiscoverySettings

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
_DISCOVERY = DiscoverySettings()

SELECT_FLAGS = (
    "format",
    "namespace",
    "package",
    "package_prefix",
    "package_regex",
    "status",
    "origin_type",
    "published_before",
    "published_after",
    "older_than",
    "newer_than",
    "version_glob",
    "version_regex",
    "version_range",
)
KEEP_FLAGS = ("keep_latest", "no_keep_default", "keep_version")

EPILOG = """\b
Examples:
  bulkops plan --domain acme --repository main --out stale.jsonl \\
      --prereleases-only --older-than 90d --keep-latest 5
  bulkops plan --domain acme --repository main --out legacy.csv \\
      --format npm --namespace acme --package 'legacy-*'
  bulkops plan --domain acme --repository main --out rules.jsonl \\
      --rules configs/rules/prerelease-cleanup.toml --keep-min 3
Then run the plan with the operation it was made for, e.g.:
  bulkops dispose --domain acme --repository main --manifest stale.jsonl --execute
  bulkops set-status --domain acme --repository main --manifest legacy.csv \\
      --target-status Archived --execute
  bulkops delete --domain acme --repository main --manifest stale.jsonl \\
      --safe-delete --execute"""


def plan_options() -> list[Decorator]:
    o = click.option
    return [
        o("--domain", required=True, help="CodeArtifact domain, e.g. acme."),
        o("--domain-owner", help="12-digit account that owns the domain, e.g. 111122223333."),
        o("--repository", required=True, help="Repository to choose versions from, e.g. main."),
        o(
            "--out",
            "-o",
            required=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="Plan file to write, .jsonl or .csv, e.g. plans/stale.jsonl.",
        ),
        o("--overwrite", is_flag=True, help="Replace an existing --out file, e.g. --overwrite."),
        o(
            "--rules",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="TOML rules file instead of the filter flags, "
            "e.g. configs/rules/prerelease-cleanup.toml.",
        ),
        o("--format", type=click.Choice(FORMATS), multiple=True, help="Package format, e.g. npm."),
        o("--namespace", multiple=True, help="Namespace glob (npm scope without @), e.g. 'acme*'."),
        o("--package", multiple=True, help="Package name glob, e.g. 'legacy-*'."),
        o("--package-prefix", help="Package name prefix, e.g. ui-."),
        o("--package-regex", help="Regex the whole name matches, e.g. '(ui|web)-.*'."),
        o("--status", type=click.Choice(STATUSES), multiple=True, help="Status, e.g. Published."),
        o(
            "--origin-type",
            type=click.Choice(["INTERNAL", "EXTERNAL", "UNKNOWN"]),
            help="Where versions came from, e.g. EXTERNAL (from an upstream).",
        ),
        o("--published-before", help="Date or ISO time (UTC), e.g. 2024-01-01."),
        o("--published-after", help="Date or ISO time (UTC), e.g. 2023-06-30T12:00:00Z."),
        o("--older-than", help="Published longer ago than this, e.g. 90d (s, m, h, d, w, y)."),
        o("--newer-than", help="Published more recently than this, e.g. 2w."),
        o("--version-glob", multiple=True, help="Version glob, e.g. '1.*'."),
        o("--version-regex", help="Regex the whole version matches, e.g. '.*-SNAPSHOT'."),
        o(
            "--version-range",
            help="Range in the format's order, e.g. '>=2.0,<3.0' or '2.x' (PEP 440 for pypi).",
        ),
        o("--prereleases-only", is_flag=True, help="Only pre-releases, e.g. 1.0.0-rc.1."),
        o("--releases-only", is_flag=True, help="Only releases, e.g. 1.0.0 but not 1.0.0-rc.1."),
        o(
            "--keep-latest",
            type=click.IntRange(min=0),
            default=0,
            help="Keep each package's N highest versions, e.g. 5.",
        ),
        o(
            "--no-keep-default",
            is_flag=True,
            help="Let the plan take the package's default version too, e.g. --no-keep-default.",
        ),
        o("--keep-version", multiple=True, help="Never select these versions (glob), e.g. '2.*'."),
        o(
            "--kept",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write the selected-but-kept versions and why, e.g. kept.jsonl.",
        ),
        *cap_options("plan"),
        o(
            "--page-size",
            type=click.IntRange(1, 1000),
            default=_DISCOVERY.page_size,
            show_default=True,
            help="maxResults of each list call, e.g. 200.",
        ),
        o(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=_DISCOVERY.concurrency,
            show_default=True,
            help="Packages listed at once, e.g. 16.",
        ),
        o(
            "--list-rate",
            type=click.FloatRange(min=0.1),
            default=_DISCOVERY.list_rate,
            show_default=True,
            help="Ceiling per list operation in calls/s (quota 200/s, shared), e.g. 50.",
        ),
        o(
            "--read-rate",
            type=click.FloatRange(min=0.1),
            default=_DISCOVERY.read_rate,
            show_default=True,
            help="Ceiling for DescribePackageVersion calls/s (quota 800/s, shared), e.g. 200.",
        ),
        o(
            "--call-timeout",
            type=click.FloatRange(min=0.1),
            default=_DISCOVERY.call_timeout,
            show_default=True,
            help="Seconds one call may take before it is retried, e.g. 60.",
        ),
    ]
