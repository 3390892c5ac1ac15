"""Version ranges of a selection rule (`>=2.0,<3.0`, `2.x`, `!=1.4.2`) in each format's order.

A range is comma-separated clauses that must all hold. A clause is a comparison
(`>=`, `>`, `<=`, `<`, `==`, `!=`; a bare version means `==`) or a release line
(`2.x`, `2.*`, `2.3.x`: every version whose leading numbers are 2 or 2.3, pre-releases
included). pypi ranges are PEP 440 specifiers (`packaging.specifiers`, where `2.x`
reads as `==2.*`); every other format compares with `bulkops.selection.versions`. Everywhere,
as in PEP 440, `<3.0` leaves out the pre-releases of 3.0 itself (3.0.0-rc.1 is below
3.0.0 but is not "the 2.x line").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from bulkops.selection.versions import Parsed, compare, parse, scheme_of

_CLAUSE = re.compile(r"(?P<op>>=|<=|==|!=|>|<|=)?\s*(?P<version>\S+)")
_LINE = re.compile(r"=?=?\s*(?P<prefix>\d+(?:\.\d+)*)\.[x*X]")


@dataclass(frozen=True, slots=True)
class _Clause:
    op: str  # one of >= > <= < == != or "line"
    bound: str  # a version, or the release prefix of a line ("2.3")


@dataclass(frozen=True)
class VersionRange:
    """A parsed range; `contains(fmt, version)` judges one version of a package of `fmt`."""

    text: str
    clauses: tuple[_Clause, ...]
    _bounds: dict[tuple[str, str], Parsed | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    _pep440: list[SpecifierSet] = field(default_factory=list, compare=False, repr=False)

    def check(self, formats: Iterable[str]) -> None:
        """Raise ValueError if a bound cannot be read as a version of one of `formats`."""
        for fmt in formats:
            if scheme_of(fmt) == "pep440":
                self._specifier()
                continue
            for clause in self.clauses:
                if clause.op != "line" and self._bound(fmt, clause.bound) is None:
                    raise ValueError(f"{clause.bound!r} is not a {fmt} version")

    def contains(self, fmt: str, version: str) -> bool:
        if scheme_of(fmt) == "pep440":
            try:
                return self._specifier().contains(Version(version), prereleases=True)
            except InvalidVersion:
                return False
        parsed = parse(fmt, version)
        if parsed is None:
            return False
        return all(self._holds(fmt, parsed, clause) for clause in self.clauses)

    def _holds(self, fmt: str, v: Parsed, clause: _Clause) -> bool:
        if clause.op == "line":
            prefix = tuple(int(n) for n in clause.bound.split("."))
            padded = v.release + (0,) * max(0, len(prefix) - len(v.release))
            return padded[: len(prefix)] == prefix
        bound = self._bound(fmt, clause.bound)
        if bound is None:
            return False
        c = compare(v, bound)
        if clause.op == "<":
            # PEP 440: "<3.0" does not take 3.0's own pre-releases
            same_line = v.prerelease and not bound.prerelease and v.release == bound.release
            return c < 0 and not same_line
        return {
            "<=": c <= 0,
            ">": c > 0,
            ">=": c >= 0,
            "==": c == 0,
            "!=": c != 0,
        }[clause.op]

    def _bound(self, fmt: str, text: str) -> Parsed | None:
        key = (scheme_of(fmt), text)
        if key not in self._bounds:
            self._bounds[key] = parse(fmt, text)
        return self._bounds[key]

    def _specifier(self) -> SpecifierSet:
        if not self._pep440:
            parts = [
                f"=={c.bound}.*" if c.op == "line" else f"{'==' if c.op == '=' else c.op}{c.bound}"
                for c in self.clauses
            ]
            try:
                self._pep440.append(SpecifierSet(",".join(parts), prereleases=True))
            except InvalidSpecifier as exc:
                raise ValueError(f"not a PEP 440 specifier: {exc}") from None
        return self._pep440[0]


def parse_range(text: str) -> VersionRange:
    """A range from its text; ValueError says what is wrong with it."""
    clauses: list[_Clause] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise ValueError(f"empty clause in range {text!r}")
        if m := _LINE.fullmatch(part):
            clauses.append(_Clause("line", m["prefix"]))
            continue
        m = _CLAUSE.fullmatch(part)
        if m is None or any(ch in m["version"] for ch in "<>=!,*"):
            raise ValueError(
                f"cannot read {part!r}: write comparisons like >=2.0 or <3 "
                "and release lines like 2.x, separated by commas"
            )
        op = m["op"] or "=="
        clauses.append(_Clause("==" if op == "=" else op, m["version"]))
    return VersionRange(text, tuple(clauses))
