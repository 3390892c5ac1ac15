"""The five operation commands: each builds its JobSpec and starts the job."""

from __future__ import annotations

from typing import Any

import click

from bulkops.cli.exits import fail
from bulkops.cli.job import rail_options
from bulkops.cli.options import (
    PACKAGES_MANIFEST,
    job_options,
    run_options,
    setup_logs,
    with_options,
)
from bulkops.cli.runs import start_job
from bulkops.cli.safe_delete import run_safe_delete, safe_delete_option
from bulkops.errors import EXIT_USAGE
from bulkops.model import STATUSES, TARGET_STATUSES, JobSpec, Operation

_shared_options = with_options(*job_options(), *rail_options(), *run_options())
_package_options = with_options(
    *job_options(manifest_help=PACKAGES_MANIFEST), *rail_options(), *run_options()
)


def _example(*lines: str) -> str:
    """An epilog of commands that click prints as they are (`\b`), never wrapped mid-word."""
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)


def _common(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "domain": kw["domain"],
        "domain_owner": kw["domain_owner"],
        "chunk_size": kw["chunk_size"],
    }


def _in_repository(kw: dict[str, Any]) -> dict[str, Any]:
    """The spec fields delete, dispose and set-status share."""
    return {"repository": kw["repository"], "expected_status": kw["expected_status"], **_common(kw)}


_repository = click.option("--repository", required=True, help="Repository to act on.")
_expected = click.option(
    "--expected-status",
    type=click.Choice(STATUSES),
    help="Act only on versions in this status; others fail MISMATCHED_STATUS.",
)


@click.command(
    "delete",
    epilog=_example(
        "bulkops delete --domain acme --repository main --manifest old.csv \\",
        "    --expected-status Archived --execute",
    ),
)
@_shared_options
@_repository
@_expected
@safe_delete_option()
def delete_cmd(**kw: Any) -> None:
    """Delete package versions (DeletePackageVersions): assets and metadata go for good."""
    if kw["safe_delete"]:
        setup_logs(kw)
        run_safe_delete(kw, JobSpec(Operation.DELETE, **_in_repository(kw)))
    start_job(kw, JobSpec(Operation.DELETE, **_in_repository(kw)))


@click.command(
    "dispose",
    epilog=_example(
        "bulkops dispose --domain acme --repository main --manifest plan.jsonl \\",
        "    --expected-status Archived --execute",
    ),
)
@_shared_options
@_repository
@_expected
def dispose_cmd(**kw: Any) -> None:
    """Dispose package versions (DisposePackageVersions): assets go, metadata stays."""
    start_job(kw, JobSpec(Operation.DISPOSE, **_in_repository(kw)))


@click.command(
    "set-status",
    epilog=_example(
        "bulkops set-status --domain acme --repository main --manifest old.csv \\",
        "    --target-status Archived --execute",
    ),
)
@_shared_options
@_repository
@_expected
@click.option(
    "--target-status",
    type=click.Choice(TARGET_STATUSES),
    required=True,
    help="The status to set (Archived and Unlisted can return to Published).",
)
def set_status_cmd(**kw: Any) -> None:
    """Set the status of package versions (UpdatePackageVersionsStatus)."""
    start_job(
        kw,
        JobSpec(Operation.SET_STATUS, target_status=kw["target_status"], **_in_repository(kw)),
    )


@click.command(
    "copy",
    epilog=_example(
        "bulkops copy --domain acme --source-repository main \\",
        "    --destination-repository release --manifest release-2x.csv --execute",
    ),
)
@_shared_options
@click.option("--source-repository", required=True, help="Repository to copy from.")
@click.option("--destination-repository", required=True, help="Repository to copy into.")
@click.option("--allow-overwrite", is_flag=True, help="Replace versions that already exist.")
@click.option(
    "--include-from-upstream",
    is_flag=True,
    help="Also copy versions the source holds from its upstream repositories.",
)
def copy_cmd(**kw: Any) -> None:
    """Copy package versions between repositories of a domain (CopyPackageVersions).

    A version already in the destination with the source's revision counts as done.
    """
    if kw["source_repository"] == kw["destination_repository"]:
        fail("--source-repository and --destination-repository must differ", EXIT_USAGE)
    start_job(
        kw,
        JobSpec(
            Operation.COPY,
            repository=kw["source_repository"],
            destination_repository=kw["destination_repository"],
            allow_overwrite=kw["allow_overwrite"],
            include_from_upstream=kw["include_from_upstream"],
            **_common(kw),
        ),
    )


@click.command(
    "delete-packages",
    epilog=_example(
        "bulkops delete-packages --domain acme --repository main \\",
        "    --manifest packages.csv --execute",
    ),
)
@_package_options
@_repository
def delete_packages_cmd(**kw: Any) -> None:
    """Delete whole packages with all their versions (DeletePackage).

    The manifest names packages (format, namespace, package) and no versions. A package
    that is already gone counts as done.
    """
    start_job(kw, JobSpec(Operation.DELETE_PACKAGES, repository=kw["repository"], **_common(kw)))
