"""The command line: parses argv, sets up logs and signals, runs jobs, maps outcomes to exits.

This module holds the group and `main`; the commands live in `operations` (the five
operations), `checkpoints` (resume, report) and `demo`, built from the shared `options`;
`runs` carries a job from start to exit and `exits` chooses how a command ends.
"""

from __future__ import annotations

import sys

import click
import structlog

from bulkops import __version__
from bulkops.cli.checkpoints import report_cmd, resume_cmd
from bulkops.cli.demo import demo_cmd
from bulkops.cli.exits import EXIT_CODES_HELP, fail, logs_are_json
from bulkops.cli.operations import (
    copy_cmd,
    delete_cmd,
    delete_packages_cmd,
    dispose_cmd,
    set_status_cmd,
)
from bulkops.cli.options import aws_options, log_options
from bulkops.emulator.command import emulator as emulator_cmd
from bulkops.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNEXPECTED, UsageError
from bulkops.plan_command import build_plan_cmd


@click.group(
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


for command in (
    delete_cmd,
    dispose_cmd,
    set_status_cmd,
    copy_cmd,
    delete_packages_cmd,
    resume_cmd,
    report_cmd,
    demo_cmd,
    build_plan_cmd(aws_options(), log_options()),
    emulator_cmd,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    try:
        code = cli.main(prog_name="bulkops", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else EXIT_OK)  # --help and --version: 0
    except click.exceptions.NoArgsIsHelpError as exc:  # `bulkops` alone: the help, for people
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # bad argv: click's message, or an event in JSON logs
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
        fail(str(exc), exc.exit_code)
    except Exception as exc:  # the last line of defence: a bug, reported with exit 1
        structlog.get_logger("bulkops").exception("unexpected_error", error=str(exc))
        sys.exit(EXIT_UNEXPECTED)
