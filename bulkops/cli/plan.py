"""`bulkops plan`: choose versions of the live repository by rules and write them as a plan file.

The command is built by `build_plan_cmd(aws_options, log_options)` so that it reuses the
CLI's own AWS and log options without importing `bulkops.cli` (which registers it).
"""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import click

from bulkops.aws.session import AwsSettings, open_codeartifact
from bulkops.cli.exits import fail, notify, print_json
from bulkops.cli.options import output_option, setup_logs
from bulkops.cli.plan_options import EPILOG, KEEP_FLAGS, SELECT_FLAGS, Decorator, plan_options
from bulkops.engine.limits import RetryPolicy
from bulkops.errors import EXIT_OK, EXIT_USAGE, BulkopsError, UsageError
from bulkops.jobs.rails import Rails
from bulkops.registry import Location
from bulkops.selection.discover import DiscoverySettings
from bulkops.selection.planfile import PlanSummary, make_plan, plan_format, summary_lines
from bulkops.selection.rules import RuleSpec, load_rule_file, rules_from_flags
from bulkops.selection.select import Selection


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


def _run(kw: dict[str, Any]) -> tuple[PlanSummary, Selection]:
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

    return anyio.run(main, backend="asyncio"), selection


def kept_nothing(summary: PlanSummary, selection: Selection) -> list[str]:
    """The keep criteria that kept no selected version, when something was selected."""
    if not summary.versions:
        return []
    return [c for c in selection.keep_criteria() if not summary.kept.get(c)]


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
        setup_logs(kw)
        try:
            summary, selection = _run(kw)
        except BulkopsError as exc:
            fail(str(exc), exc.exit_code)
        except (click.ClickException, OSError) as exc:
            fail(str(exc), EXIT_USAGE)
        if kw["output"] == "json":
            print_json(plan_document(summary, kw))
            sys.exit(EXIT_OK)
        for line in summary_lines(summary, kw["kept"]):
            click.echo(line)
        for criterion in kept_nothing(summary, selection):
            # --keep-latest (or a keep rule's latest) counts each package's highest versions
            # overall, which may all lie outside the selection (a 1.x range under a 2.x
            # line): a delete would then keep none of what it selected. Say so plainly.
            notify(
                "keep_rule_kept_nothing",
                f"warning: {criterion} kept nothing inside the selection: every version it "
                "keeps lies outside what was selected. To keep the newest selected versions, "
                "give a keep rule the select rule's own filters and latest (--rules, see "
                "docs/selection.md)",
                level="warning",
                criterion=criterion,
                advice="give a keep rule the select rule's own filters and latest "
                "(--rules, see docs/selection.md)",
            )
        if summary.versions:
            click.echo(
                "Run it with the operation it was made for (each sends nothing without --execute):"
            )
            for command in next_commands(kw):
                click.echo(f"  {command}")
        sys.exit(EXIT_OK)

    options: list[Decorator] = [*plan_options(), *aws_options, *log_options, output_option]
    for option in reversed(options):
        plan_cmd = option(plan_cmd)
    return click.command("plan", epilog=EPILOG)(plan_cmd)
