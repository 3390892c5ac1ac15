"""Selection: which versions of a package a rule set selects, which it keeps, and why.

For each package, a version is selected by the first select rule whose filters all match
it; a selected version is kept (stays out of the plan) when any keep criterion holds:

    keep rule 'NAME'        the rule's filters match (with latest = N: the N highest matches)
    latest N                among the N highest versions of the package (Disposed ones
                            are not counted: they have no assets left to keep)
    defaultDisplayVersion   the version the package shows by default (unless turned off)

"Highest" is the format's own version order (`bulkops.selection.versions`), or publish order for a
package with a version that order cannot read. Keep wins over select, always. Each
selected version carries the name of its rule, each kept one the reason it was kept.

`Selection.listing()` tells discovery what it can leave to the server: ListPackages'
format, namespace and package prefixes when every select rule shares them, and
ListPackageVersions' status and origin filters only when nothing needs the versions
those filters would hide (latest-N counts and --keep-min need them all).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime

from bulkops.model import PackageRef
from bulkops.registry import PackageQuery
from bulkops.selection.discover import Listing, PackageVersions, VersionInfo
from bulkops.selection.ranges import VersionRange, parse_range
from bulkops.selection.rules import KeepMatch, Match, RuleSpec, parse_age
from bulkops.selection.versions import Ordered, is_prerelease, order

DEFAULT_VERSION = "defaultDisplayVersion"
GONE = frozenset({"Disposed", "Deleted"})  # not counted as versions a package still has


@dataclass(frozen=True, slots=True)
class Decision:
    """One selected version: the rule that selected it and, if kept, why."""

    version: VersionInfo
    rule: str
    kept: str | None = None


@dataclass(slots=True)
class PackageDecision:
    """What the rules decided for one package."""

    ref: PackageRef
    selected: list[Decision] = field(default_factory=list)  # the plan's rows
    kept: list[Decision] = field(default_factory=list)
    live: int = 0  # versions the package has that are not Disposed
    ordered: Ordered | None = None  # how "latest" was ordered, when it was needed

    @property
    def remaining(self) -> int:
        """Versions not Disposed that the plan leaves in place."""
        return self.live - sum(d.version.status not in GONE for d in self.selected)


def _glob_prefix(pattern: str) -> str:
    """The literal start of a glob, up to its first wildcard."""
    return re.split(r"[*?\[]", pattern, maxsplit=1)[0]


class Rule:
    """One rule, compiled: package filters, version filters and time cutoffs."""

    def __init__(self, spec: Match, name: str, now: datetime) -> None:
        self.name = name
        self.spec = spec
        self.formats = frozenset(spec.format) if spec.format else None
        self.statuses = frozenset(spec.status) if spec.status else None
        self.package_regex = re.compile(spec.package_regex) if spec.package_regex else None
        self.version_regex = re.compile(spec.version_regex) if spec.version_regex else None
        self.range: VersionRange | None = (
            parse_range(spec.version_range) if spec.version_range else None
        )
        self.latest = spec.latest if isinstance(spec, KeepMatch) else None
        # time filters as (cutoff, before): published before the cutoff, or at/after it
        self.times: list[tuple[datetime, bool]] = []
        if spec.published_before:
            self.times.append((spec.published_before, True))
        if spec.older_than:
            self.times.append((now - parse_age(spec.older_than), True))
        if spec.published_after:
            self.times.append((spec.published_after, False))
        if spec.newer_than:
            self.times.append((now - parse_age(spec.newer_than), False))

    def matches_package(self, ref: PackageRef) -> bool:
        s = self.spec
        if self.formats is not None and ref.format not in self.formats:
            return False
        if s.namespace is not None and (
            ref.namespace is None
            or not any(fnmatch.fnmatchcase(ref.namespace, g) for g in s.namespace)
        ):
            return False
        if s.package is not None and not any(
            fnmatch.fnmatchcase(ref.package, g) for g in s.package
        ):
            return False
        if s.package_prefix is not None and not ref.package.startswith(s.package_prefix):
            return False
        return self.package_regex is None or bool(self.package_regex.fullmatch(ref.package))

    def matches_version(
        self, ref: PackageRef, v: VersionInfo, cutoffs: dict[datetime, int]
    ) -> bool:
        s = self.spec
        if self.statuses is not None and v.status not in self.statuses:
            return False
        if s.origin_type is not None and v.origin_type != s.origin_type:
            return False
        if s.version is not None and not any(fnmatch.fnmatchcase(v.version, g) for g in s.version):
            return False
        if self.version_regex is not None and not self.version_regex.fullmatch(v.version):
            return False
        if s.prerelease is not None and is_prerelease(ref.format, v.version) != s.prerelease:
            return False
        if self.range is not None and not self.range.contains(ref.format, v.version):
            return False
        for cutoff, before in self.times:
            if v.band < 0:  # unknown publish time: no time filter can be said to match
                return False
            if v.published_before(cutoffs[cutoff]) != before:
                return False
        return True

    def query(self) -> PackageQuery:
        """The ListPackages filters this rule alone allows."""
        s = self.spec
        fmt = s.format[0] if s.format and len(s.format) == 1 else None
        ns = _glob_prefix(s.namespace[0]) if s.namespace and len(s.namespace) == 1 else ""
        prefix = s.package_prefix or ""
        if not prefix and s.package and len(s.package) == 1:
            prefix = _glob_prefix(s.package[0])
        return PackageQuery(fmt, ns or None, prefix or None)


class Selection:
    """A compiled rule set: evaluates packages and tells discovery what to list."""

    def __init__(self, spec: RuleSpec, now: datetime) -> None:
        self.spec = spec
        self.select = [Rule(m, m.name or f"select-{i + 1}", now) for i, m in enumerate(spec.select)]
        self.keep = [Rule(m, m.name or f"keep-{i + 1}", now) for i, m in enumerate(spec.keep.rule)]
        moments = {c for r in (*self.select, *self.keep) for c, _ in r.times}
        self.cutoffs = tuple(sorted(moments))
        self._cutoff_index = {c: i for i, c in enumerate(self.cutoffs)}

    @property
    def needs_all_versions(self) -> bool:
        return self.spec.keep.latest > 0 or any(r.latest for r in self.keep)

    def listing(self, keep_min: int = 0) -> Listing:
        """What discovery lists: server-side filters where they lose nothing."""
        queries = {r.query() for r in self.select}
        query = queries.pop() if len(queries) == 1 else PackageQuery()
        status = origin = None
        if not self.needs_all_versions and keep_min <= 0:
            statuses = {tuple(r.spec.status or ()) for r in self.select}
            origins = {r.spec.origin_type for r in self.select}
            if len(statuses) == 1 and len(only := statuses.pop()) == 1:
                status = only[0]
            if len(origins) == 1:
                origin = origins.pop()
        return Listing(
            query=query,
            wants=self.wants,
            status=status,
            origin_type=origin,
            cutoffs=self.cutoffs,
            needs_times=self.needs_times,
        )

    def wants(self, ref: PackageRef) -> bool:
        """Whether a package can hold a selected version (else it is not even listed)."""
        return any(r.matches_package(ref) for r in self.select)

    def needs_times(self, ref: PackageRef) -> bool:
        return any(r.times and r.matches_package(ref) for r in (*self.select, *self.keep))

    def evaluate(self, pkg: PackageVersions) -> PackageDecision:
        """The decision for one package: selected versions with their rules, kept ones with why."""
        ref, cut = pkg.ref, self._cutoff_index
        out = PackageDecision(ref, live=sum(v.status not in GONE for v in pkg.versions))
        rules = [r for r in self.select if r.matches_package(ref)]
        chosen: list[tuple[VersionInfo, str]] = []
        for v in pkg.versions:
            rule = next((r.name for r in rules if r.matches_version(ref, v, cut)), None)
            if rule is not None:
                chosen.append((v, rule))
        if not chosen:
            return out
        reasons = self._keep_reasons(pkg, out)
        for v, rule in chosen:
            why = reasons.get(v.version)
            (out.kept if why else out.selected).append(Decision(v, rule, why))
        return out

    def keep_criteria(self) -> list[str]:
        """The reasons a kept version can carry from a keep rule or --keep-latest, as the
        plan's summary counts them: one that counts nothing kept nothing of the selection."""
        criteria = [
            f"keep rule {r.name!r} (latest {r.latest})" if r.latest else f"keep rule {r.name!r}"
            for r in self.keep
        ]
        if self.spec.keep.latest:
            criteria.append(f"latest {self.spec.keep.latest}")
        return criteria

    def _keep_reasons(self, pkg: PackageVersions, out: PackageDecision) -> dict[str, str]:
        ref, keep, cut = pkg.ref, self.spec.keep, self._cutoff_index
        reasons: dict[str, str] = {}
        ascending: list[VersionInfo] | None = None
        if self.needs_all_versions:
            ascending, out.ordered = order(
                ref.format, pkg.versions, lambda v: v.version, lambda v: v.rank
            )
        for rule in self.keep:
            if not rule.matches_package(ref):
                continue
            pool = ascending if ascending is not None else pkg.versions
            matching = [v for v in pool if rule.matches_version(ref, v, cut)]
            if rule.latest:
                matching = [v for v in matching if v.status not in GONE][-rule.latest :]
                why = f"keep rule {rule.name!r} (latest {rule.latest})"
            else:
                why = f"keep rule {rule.name!r}"
            for v in matching:
                reasons.setdefault(v.version, why)
        if keep.latest and ascending is not None:
            for v in [v for v in ascending if v.status not in GONE][-keep.latest :]:
                reasons.setdefault(v.version, f"latest {keep.latest}")
        if keep.default_version and pkg.default_display_version:
            reasons.setdefault(pkg.default_display_version, DEFAULT_VERSION)
        return reasons
