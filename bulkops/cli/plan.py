"""`bulkops plan`: choose versions of the live repository by rules and write them as a plan file.

The command is built by `build_plan_cmd(aws_options, log_options)` so that it reuses the
CLI's own AWS and log options without importing `bulkops.cli` (which registers it).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click

from bulkops.aws.session import AwsSettings, open_codeartifact
from bulkops.engine.limits import RetryPolicy
from bulkops.errors import EXIT_OK, EXIT_USAGE, BulkopsError, UsageError
from bulkops.jobs.rails import Rails
from bulkops.model import FORMATS, STATUSES
from bulkops.registry import Location
from bulkops.selection.discover import DiscoverySettings
from bulkops.selection.planfile import PlanSummary, make_plan, plan_format, summary_lines
from bulkops.selection.rules import RuleSpec, load_rule_file, rules_from_flags
from bulkops.selection.select import Selection

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

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


def _fail(message: str, code: int) -> NoReturn:
    from bulkops.cli.exits import fail  # bulkops.cli imports this module

    fail(message, code)


def next_commands(kw: dict[str, Any]) -> list[str]:
    """The operations a plan can run with, as commands to paste (copy needs a destination)."""
    owner = ["--domain-owner", kw["domain_owner"]] if kw.get("domain_owner") else []
    where = ["--domain", kw["domain"], *owner]
    manifest = ["--manifest", str(kw["out"])]
    repo = ["--repository", kw["repository"]]
    return [
        shlex.join(argv)
        for argv in (
            ["bulkops", "set-status", *where, *repo, *manifest, "--target-status", "Archived"],
            ["bulkops", "dispose", *where, *repo, *manifest],
            [
                "bulkops",
                "copy",
                *where,
                "--source-repository",
                kw["repository"],
                "--destination-repository",
                "DESTINATION",
                *manifest,
            ],
            ["bulkops", "delete", *where, *repo, *manifest, "--safe-delete"],
        )
    ]


def plan_document(summary: PlanSummary, kw: dict[str, Any]) -> dict[str, Any]:
    """The plan's summary as `--output json` prints it."""
    return {
        "out": str(summary.path) if summary.path is not None else None,
        "domain": summary.where.domain,
        "repository": summary.where.repository,
        "packages": summary.packages,
        "versions": summary.versions,
        "packages_scanned": summary.packages_scanned,
        "versions_scanned": summary.versions_scanned,
        "by_rule": dict(summary.by_rule),
        "by_status": dict(summary.by_status),
        "by_format": dict(summary.by_format),
        "kept": dict(summary.kept),
        "kept_out": str(kw["kept"]) if kw.get("kept") else None,
        "calls": dict(summary.calls),
        "throttled": summary.throttled,
        "next_commands": next_commands(kw) if summary.versions else [],
    }


def _options() -> list[Decorator]:
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
        o(
            "--max-versions",
            type=click.IntRange(min=0),
            help="Refuse a plan of more versions than this, e.g. 10000.",
        ),
        o(
            "--max-packages",
            type=click.IntRange(min=0),
            help="Refuse a plan touching more packages than this, e.g. 200.",
        ),
        o(
            "--keep-min",
            type=click.IntRange(min=0),
            default=0,
            help="Refuse a plan leaving a package fewer versions (not Disposed) than this, e.g. 3.",
        ),
        o(
            "--page-size",
            type=click.IntRange(1, 1000),
            default=1000,
            show_default=True,
            help="maxResults of each list call, e.g. 200.",
        ),
        o(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Packages listed at once, e.g. 16.",
        ),
        o(
            "--list-rate",
            type=click.FloatRange(min=0.1),
            default=100.0,
            show_default=True,
            help="Ceiling per list operation in calls/s (quota 200/s, shared), e.g. 50.",
        ),
        o(
            "--read-rate",
            type=click.FloatRange(min=0.1),
            default=400.0,
            show_default=True,
            help="Ceiling for DescribePackageVersion calls/s (quota 800/s, shared), e.g. 200.",
        ),
        o(
            "--call-timeout",
            type=click.FloatRange(min=0.1),
            default=30.0,
            show_default=True,
            help="Seconds one call may take before it is retried, e.g. 60.",
        ),
    ]


def _rule_spec(kw: dict[str, Any]) -> RuleSpec:
    flags = [k for k in (*SELECT_FLAGS, *KEEP_FLAGS) if kw.get(k)]
    flags += [k for k in ("prereleases_only", "releases_only") if kw.get(k)]
    if kw["rules"] is not None:
        if flags:
            named = ", ".join("--" + k.replace("_", "-") for k in flags)
            raise UsageError(f"--rules replaces the filter and keep flags; drop {named}")
        return load_rule_file(kw["rules"])
    if kw["prereleases_only"] and kw["releases_only"]:
        raise UsageError("--prereleases-only and --releases-only exclude each other")
    select = {k: kw[k] for k in SELECT_FLAGS}
    select["version"] = select.pop("version_glob")
    if kw["prereleases_only"] or kw["releases_only"]:
        select["prerelease"] = bool(kw["prereleases_only"])
    if not any(v not in (None, ()) for v in select.values()):
        raise UsageError(
            "no selection: give --rules FILE or at least one filter (e.g. --older-than 90d, "
            "--prereleases-only, --package 'legacy-*')"
        )
    keep: dict[str, Any] = {
        "latest": kw["keep_latest"],
        "default_version": not kw["no_keep_default"],
    }
    if kw["keep_version"]:
        keep["rule"] = [{"name": "--keep-version", "version": list(kw["keep_version"])}]
    return rules_from_flags(select, keep)


def _run(kw: dict[str, Any]) -> PlanSummary:
    out: Path = kw["out"]
    plan_format(out)
    if out.exists() and not kw["overwrite"]:
        raise UsageError(f"{out} exists; add --overwrite to replace it, or choose another --out")
    selection = Selection(_rule_spec(kw), datetime.now(UTC))
    rails = Rails(
        max_versions=kw["max_versions"], max_packages=kw["max_packages"], keep_min=kw["keep_min"]
    )
    settings = DiscoverySettings(
        concurrency=kw["concurrency"],
        list_rate=kw["list_rate"],
        read_rate=kw["read_rate"],
        page_size=kw["page_size"],
        call_timeout=kw["call_timeout"],
        retry=RetryPolicy(),
    )
    aws = AwsSettings(
        region=kw.get("region"),
        profile=kw.get("profile"),
        endpoint_url=kw.get("endpoint_url"),
        max_pool_connections=kw["concurrency"] + 8,
        read_timeout=kw["call_timeout"],
    )
    where = Location(kw["domain"], kw["repository"], kw["domain_owner"])

    async def main() -> PlanSummary:
        async with open_codeartifact(aws) as registry:
            return await make_plan(
                registry, where, selection, out, rails=rails, settings=settings, kept_out=kw["kept"]
            )

    return anyio.run(main, backend="asyncio")


def build_plan_cmd(aws_options: list[Decorator], log_options: list[Decorator]) -> click.Command:
    """The `plan` command, with the CLI's AWS and log options appended."""

    def plan_cmd(**kw: Any) -> None:
        """Choose versions from the live repository by rules and write a plan file.

        Lists every package and version (every page, paced under the read quotas),
        applies the select and keep rules, and writes the selected versions with their
        revisions pinned: run the plan with any operation's --manifest and a version
        changed since planning comes back MISMATCHED_REVISION, untouched. Keep rules
        (--keep-latest, the default version, --keep-version) always win over select
        rules. Nothing is changed by this command.
        """
        from bulkops.cli.exits import notify, print_json  # bulkops.cli imports this module
        from bulkops.cli.options import setup_logs

        setup_logs(kw)
        try:
            summary = _run(kw)
        except BulkopsError as exc:
            _fail(str(exc), exc.exit_code)
        except (click.ClickException, OSError) as exc:
            _fail(str(exc), EXIT_USAGE)
        if kw["output"] == "json":
            print_json(plan_document(summary, kw))
            sys.exit(EXIT_OK)
        for line in summary_lines(summary, kw["kept"]):
            click.echo(line)
        latest = kw.get("keep_latest") or 0
        if latest and summary.versions and not summary.kept.get(f"latest {latest}"):
            # --keep-latest counts each package's highest versions overall, which may all
            # lie outside the selection (a 1.x range under a 2.x line): say so plainly
            notify(
                "keep_latest_kept_nothing",
                f"warning: --keep-latest {latest} kept nothing inside the selection: each "
                "package's highest versions lie outside it. To keep the newest selected "
                "versions, use a keep rule with its own version_range and latest "
                "(--rules, see docs/selection.md)",
                level="warning",
                keep_latest=latest,
                advice="to keep the newest selected versions, use a keep rule with its own "
                "version_range and latest (--rules, see docs/selection.md)",
            )
        if summary.versions:
            click.echo(
                "Run it with the operation it was made for (each sends nothing without --execute):"
            )
            for command in next_commands(kw):
                click.echo(f"  {command}")
        sys.exit(EXIT_OK)

    from bulkops.cli.options import output_option  # bulkops.cli imports this module

    options: list[Decorator] = [*_options(), *aws_options, *log_options, output_option]
    for option in reversed(options):
        plan_cmd = option(plan_cmd)
    return click.command("plan", epilog=EPILOG)(plan_cmd)
