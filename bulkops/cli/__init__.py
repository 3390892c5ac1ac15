"""The command line: parses argv, sets up logs and signals, runs jobs, maps outcomes to exits.

This module holds the group and `main`; the commands live in `operations` (the five
operations), `checkpoints` (resume, report) and `demo`, built from the shared `options`;
`runs` carries a job from start to exit and `exits` chooses how a command ends.
Each command's module is imported only when that command runs, so `--help`, `--version`
and completion never load aioboto3, botocore or aiohttp.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from typing import Any, NoReturn

import click
from click.shell_completion import CompletionItem

from bulkops import __version__
from bulkops.errors import EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNEXPECTED, UsageError

# name -> (module, attribute, summary). The summary is the command's first help
# paragraph, so listing the commands imports none of them (tests/test_startup.py checks it).
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "delete": (
        "bulkops.cli.operations",
        "delete_cmd",
        "Delete package versions (DeletePackageVersions): assets and metadata go for good.",
    ),
    "dispose": (
        "bulkops.cli.operations",
        "dispose_cmd",
        "Dispose package versions (DisposePackageVersions): assets go, metadata stays.",
    ),
    "set-status": (
        "bulkops.cli.operations",
        "set_status_cmd",
        "Set the status of package versions (UpdatePackageVersionsStatus).",
    ),
    "copy": (
        "bulkops.cli.operations",
        "copy_cmd",
        "Copy package versions between repositories of a domain (CopyPackageVersions).",
    ),
    "delete-packages": (
        "bulkops.cli.operations",
        "delete_packages_cmd",
        "Delete whole packages with all their versions (DeletePackage).",
    ),
    "resume": (
        "bulkops.cli.checkpoints",
        "resume_cmd",
        "Continue a job from its checkpoint: only what is not yet done is sent.",
    ),
    "report": (
        "bulkops.cli.checkpoints",
        "report_cmd",
        "Print a job's outcome, merged over every chunk, retry and resume, in the API's shapes.",
    ),
    "status": (
        "bulkops.cli.status",
        "status_cmd",
        "Show each shard of a job: done, pending, failed, lease holder, last record's age.",
    ),
    "demo": (
        "bulkops.cli.demo",
        "demo_cmd",
        "Run a realistic cleanup on an embedded emulator: no AWS account, no network.",
    ),
    "plan": (
        "bulkops.cli",
        "plan_command",
        "Choose versions from the live repository by rules and write a plan file.",
    ),
    "emulator": (
        "bulkops.cli.emulator",
        "emulator",
        "Run a local CodeArtifact that speaks the real wire protocol, for tests and demos.",
    ),
}


def plan_command() -> click.Command:
    """The `plan` command, built with the CLI's shared AWS and log options."""
    from bulkops.cli.options import aws_options, log_options
    from bulkops.cli.plan import build_plan_cmd

    return build_plan_cmd(aws_options(), log_options())


class LazyGroup(click.Group):
    """A group whose commands are imported on first use, listed from their summaries."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(LAZY_COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in LAZY_COMMANDS:
            return None
        module, attribute, _ = LAZY_COMMANDS[cmd_name]
        found: Any = getattr(importlib.import_module(module), attribute)
        command: click.Command = (
            found() if callable(found) and not isinstance(found, click.Command) else found
        )
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in LAZY_COMMANDS)
        rows = [
            (name, click.Command(name, help=summary).get_short_help_str(limit))
            for name, (_, _, summary) in sorted(LAZY_COMMANDS.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        # Complete command names from the summaries; options go through click as usual.
        if incomplete.startswith("-") or ctx.protected_args or ctx.args:
            return super().shell_complete(ctx, incomplete)
        return [
            CompletionItem(name, help=summary)
            for name, (_, _, summary) in sorted(LAZY_COMMANDS.items())
            if name.startswith(incomplete)
        ]


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="bulkops")
def cli() -> None:
    """Bulk lifecycle operations on AWS CodeArtifact package versions.

    Every operation reads a manifest and validates it whole; without --execute it only
    prints the plan. With --execute it runs chunks of up to 100 versions concurrently
    under an adaptive rate limit, journals every answer to a checkpoint, and can be
    stopped and resumed at any point. Options also come from BULKOPS_* environment
    variables and --config job files (see configs/).
    """


def exit_now(code: int) -> NoReturn:
    """Exit without the interpreter tearing down a large heap object by object.

    Everything that must outlive the process is already written: journals and chunk lists
    are fsynced and closed before a command returns. The atexit handlers still run and both
    output streams are flushed; a process with a thread still running exits normally.
    """
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: let the interpreter report it the usual way
        sys.exit(code)
    os._exit(code)


def main() -> None:
    """Console-script entry point: every way out is an exit code, then a fast exit."""
    try:
        _run_cli()
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            exit_now(code or 0)
        raise


def _run_cli() -> NoReturn:
    try:
        code = cli.main(prog_name="bulkops", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else EXIT_OK)  # --help and --version: 0
    except click.exceptions.NoArgsIsHelpError as exc:  # `bulkops` alone: the help, for people
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # bad argv: click's message, or an event in JSON logs
        from bulkops.cli.exits import fail, logs_are_json

        if logs_are_json():
            fail(exc.format_message(), exc.exit_code)
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:  # Ctrl-C outside a job (a prompt, the emulator), as click says it
        click.echo("Aborted!", err=True)
        sys.exit(EXIT_UNEXPECTED)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except UsageError as exc:
        from bulkops.cli.exits import fail

        fail(str(exc), exc.exit_code)
    except Exception as exc:  # the last line of defence: a bug, reported with exit 1
        import structlog

        structlog.get_logger("bulkops").exception("unexpected_error", error=str(exc))
        sys.exit(EXIT_UNEXPECTED)
