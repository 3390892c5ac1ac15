"""The selection rules' schema and loading: a TOML rules file or `bulkops plan` flags, validated.

    [[select]]                      # a version is selected by the first rule that matches it
    name = "stale-prereleases"
    format = ["npm", "pypi"]        # every filter is optional; all given must match
    prerelease = true
    older_than = "90d"

    [keep]                          # kept versions stay out of the plan, whatever selected them
    latest = 5                      # the 5 highest versions of each package
    default_version = true          # the package's defaultDisplayVersion (the default)

    [[keep.rule]]                   # filters as in [[select]], plus latest = N
    name = "lts"
    version_range = "2.x"

Unknown keys, wrong types and unreadable values raise UsageError (exit 2) naming the file,
the key and the reason. Filters: format, namespace, package (globs), package_prefix,
package_regex (whole name), status, origin_type, published_before, published_after
(dates or times, UTC unless given), older_than, newer_than (ages: 90d, 12w, 36h, 1y),
version (globs), version_regex (whole version), version_range, prerelease.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bulkops.errors import UsageError
from bulkops.model import FORMATS, Format, Status
from bulkops.selection.ranges import parse_range
from bulkops.tomlfile import problems, read_toml

OriginType = Literal["INTERNAL", "EXTERNAL", "UNKNOWN"]
_AGE = re.compile(r"(\d+)\s*([smhdwy])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_age(text: str) -> timedelta:
    """An age such as 90d, 12w, 36h, 1y or 1w2d (s, m, h, d, w, y = 365d)."""
    compact = text.strip().lower().replace(" ", "")
    parts = _AGE.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not an age: write e.g. 90d, 12w, 36h or 1y")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def _as_utc(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO time") from None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Moment = Annotated[datetime, BeforeValidator(_as_utc)]
Strings = Annotated[list[str], BeforeValidator(_listed)]


class Match(BaseModel):
    """The filters of one rule; a version matches when every filter given matches it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    format: Annotated[list[Format], BeforeValidator(_listed)] | None = None
    namespace: Strings | None = None
    package: Strings | None = None
    package_prefix: str | None = None
    package_regex: str | None = None
    status: Annotated[list[Status], BeforeValidator(_listed)] | None = None
    origin_type: OriginType | None = None
    published_before: Moment | None = None
    published_after: Moment | None = None
    older_than: str | None = None
    newer_than: str | None = None
    version: Strings | None = None
    version_regex: str | None = None
    version_range: str | None = None
    prerelease: bool | None = None

    @field_validator("namespace")
    @classmethod
    def _no_at(cls, value: list[str] | None) -> list[str] | None:
        for ns in value or ():
            if ns.startswith("@"):
                raise ValueError(f"npm scopes are namespaces without '@': write {ns[1:]!r}")
        return value

    @field_validator("package_regex", "version_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("older_than", "newer_than")
    @classmethod
    def _age(cls, value: str | None) -> str | None:
        if value is not None:
            parse_age(value)
        return value

    @field_validator("version_range")
    @classmethod
    def _range(cls, value: str | None) -> str | None:
        if value is not None:
            parse_range(value)
        return value

    @model_validator(mode="after")
    def _range_fits_formats(self) -> Match:
        if self.version_range is not None:
            try:
                parse_range(self.version_range).check(self.format or FORMATS)
            except ValueError as exc:
                hint = "" if self.format else " (limit the rule to the formats it is for)"
                raise ValueError(f"version_range: {exc}{hint}") from None
        return self


class KeepMatch(Match):
    """A keep rule: its filters, and with `latest` only the N highest versions matching them."""

    latest: int | None = Field(default=None, ge=1)


class Keep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latest: int = Field(default=0, ge=0)
    default_version: bool = True
    rule: list[KeepMatch] = Field(default_factory=list)


class RuleSpec(BaseModel):
    """A whole rule set: at least one select rule, and what to keep."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    select: list[Match] = Field(min_length=1)
    keep: Keep = Field(default_factory=Keep)


def load_rule_file(path: Path) -> RuleSpec:
    """The rules of a TOML file; UsageError naming file, key and reason when they are wrong."""
    data = read_toml(path, "rules file")
    try:
        return RuleSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {key}: {reason}" for key, reason in problems(exc)]
        raise UsageError("\n".join(lines)) from None


def rules_from_flags(select: dict[str, Any], keep: dict[str, Any]) -> RuleSpec:
    """One select rule named "flags" and the keep settings, from command-line values."""
    chosen = {k: v for k, v in select.items() if v not in (None, (), [])}
    try:
        return RuleSpec(select=[Match(name="flags", **chosen)], keep=Keep(**keep))
    except ValidationError as exc:
        lines = []
        for key, reason in problems(exc):
            if key == "(top level)" and ": " in reason:  # a check across fields names its own
                key, reason = reason.split(": ", 1)
            flag = "--" + key.rsplit(".", 1)[-1].split("[")[0].replace("_", "-")
            lines.append(f"{flag}: {reason}")
        raise UsageError("\n".join(lines)) from None
