"""The --concurrency (auto or N) and --max-concurrency options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

MAX_CONCURRENCY = 1024  # one connection each: well under a default limit of 1024+ open files


class Concurrency(click.ParamType):  # type: ignore[type-arg]
    """`auto` or a whole number of calls in flight, 1..MAX_CONCURRENCY."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        else:
            text = str(value).strip().lower()
            if text == "auto":
                return "auto"
        if not text.isdigit() or not 1 <= int(text) <= MAX_CONCURRENCY:
            self.fail(
                f"{value!r} is neither auto nor a whole number from 1 to {MAX_CONCURRENCY}",
                param,
                ctx,
            )
        return int(text)


def concurrency_options(max_default: int) -> list[Callable[[Callable[..., Any]], Any]]:
    """The two options, in --help order."""
    return [
        click.option(
            "--concurrency",
            type=Concurrency(),
            default="auto",
            show_default=True,
            envvar="BULKOPS_CONCURRENCY",
            help="Calls in flight at once. auto: about rate × latency (p90, with headroom), "
            "found from the answers and cut when latency rises with load; N pins it.",
        ),
        click.option(
            "--max-concurrency",
            type=click.IntRange(1, MAX_CONCURRENCY),
            default=max_default,
            show_default=True,
            envvar="BULKOPS_MAX_CONCURRENCY",
            help="The most calls in flight auto may reach, one HTTP connection each "
            "(256 carries 100 calls/s at up to ~1.7 s per call).",
        ),
    ]
