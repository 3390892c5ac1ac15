"""Selection rules, ranges and rule files: pure tests on hand-built packages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bulkops.errors import UsageError
from bulkops.model import PackageRef
from bulkops.selection.discover import UNKNOWN_BAND, PackageVersions, VersionInfo
from bulkops.selection.ranges import parse_range
from bulkops.selection.rules import RuleSpec, load_rule_file, parse_age, rules_from_flags
from bulkops.selection.select import DEFAULT_VERSION, Selection

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RULES_DIR = Path(__file__).resolve().parent.parent / "configs" / "rules"
NPM = PackageRef("npm", "acme", "ui-kit")


def spec(select: list[dict[str, Any]], keep: dict[str, Any] | None = None) -> RuleSpec:
    return RuleSpec.model_validate({"select": select, "keep": keep or {}})


def package(
    ref: PackageRef,
    versions: list[str],
    *,
    statuses: dict[str, str] | None = None,
    bands: dict[str, int] | None = None,
    default: str | None = None,
) -> PackageVersions:
    statuses, bands = statuses or {}, bands or {}
    infos = [
        VersionInfo(v, f"rev-{v}", statuses.get(v, "Published"), "INTERNAL", i, bands.get(v, 0))
        for i, v in enumerate(versions)
    ]
    return PackageVersions(ref, default, infos)


def selected(sel: Selection, pkg: PackageVersions) -> list[str]:
    return [d.version.version for d in sel.evaluate(pkg).selected]


def kept(sel: Selection, pkg: PackageVersions) -> dict[str, str | None]:
    return {d.version.version: d.kept for d in sel.evaluate(pkg).kept}


def test_keep_latest_counts_by_version_order_so_10_0_outranks_9_0() -> None:
    # published in this order; a string sort would call 9.0.0 the latest
    pkg = package(NPM, ["10.0.0", "8.0.0", "9.0.0", "1.0.0", "2.0.0"])
    sel = Selection(spec([{"name": "all"}], {"latest": 2, "default_version": False}), NOW)
    assert kept(sel, pkg) == {"10.0.0": "latest 2", "9.0.0": "latest 2"}
    assert selected(sel, pkg) == ["8.0.0", "1.0.0", "2.0.0"]


def test_keep_rules_win_over_select_rules_and_record_why() -> None:
    pkg = package(NPM, ["1.0.0", "2.0.0", "2.1.0", "3.0.0"], default="3.0.0")
    sel = Selection(
        spec(
            [{"name": "everything"}],
            {"rule": [{"name": "lts", "version_range": "2.x"}]},
        ),
        NOW,
    )
    decision = sel.evaluate(pkg)
    assert [d.version.version for d in decision.selected] == ["1.0.0"]
    assert {d.version.version: d.kept for d in decision.kept} == {
        "2.0.0": "keep rule 'lts'",
        "2.1.0": "keep rule 'lts'",
        "3.0.0": DEFAULT_VERSION,
    }
    assert all(d.rule == "everything" for d in decision.kept + decision.selected)


def test_the_default_display_version_is_kept_unless_turned_off() -> None:
    pkg = package(NPM, ["1.0.0", "2.0.0"], default="1.0.0")
    keep_default = Selection(spec([{"name": "x"}]), NOW)
    assert selected(keep_default, pkg) == ["2.0.0"]
    take_all = Selection(spec([{"name": "x"}], {"default_version": False}), NOW)
    assert selected(take_all, pkg) == ["1.0.0", "2.0.0"]


def test_the_first_matching_select_rule_is_the_one_recorded() -> None:
    pkg = package(NPM, ["1.0.0-rc.1", "1.0.0"])
    sel = Selection(
        spec([{"name": "pre", "prerelease": True}, {"name": "any"}], {"default_version": False}),
        NOW,
    )
    assert {d.version.version: d.rule for d in sel.evaluate(pkg).selected} == {
        "1.0.0-rc.1": "pre",
        "1.0.0": "any",
    }


def test_a_keep_rule_with_latest_keeps_only_the_highest_matches() -> None:
    pkg = package(NPM, ["1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0"])
    sel = Selection(
        spec(
            [{"name": "pre", "prerelease": True}],
            {"rule": [{"name": "last-rc", "prerelease": True, "latest": 1}]},
        ),
        NOW,
    )
    assert kept(sel, pkg) == {"1.0.0-rc.10": "keep rule 'last-rc' (latest 1)"}
    assert selected(sel, pkg) == ["1.0.0-rc.1", "1.0.0-rc.2"]


def test_disposed_versions_do_not_count_towards_latest() -> None:
    pkg = package(NPM, ["1.0.0", "2.0.0", "3.0.0"], statuses={"3.0.0": "Disposed"})
    sel = Selection(spec([{"name": "x"}], {"latest": 1, "default_version": False}), NOW)
    assert kept(sel, pkg) == {"2.0.0": "latest 1"}
    assert selected(sel, pkg) == ["1.0.0", "3.0.0"]


def test_maven_latest_follows_maven_qualifier_order() -> None:
    ref = PackageRef("maven", "com.acme", "core")
    pkg = package(ref, ["2.0-SNAPSHOT", "1.9", "2.0-RC1", "2.0", "2.0-M1", "10.0-alpha-1"])
    sel = Selection(spec([{"name": "x"}], {"latest": 2, "default_version": False}), NOW)
    assert set(kept(sel, pkg)) == {"10.0-alpha-1", "2.0"}
    assert selected(sel, pkg) == ["2.0-SNAPSHOT", "1.9", "2.0-RC1", "2.0-M1"]


def test_time_filters_read_the_publish_band_and_never_match_an_unknown_time() -> None:
    # one cutoff (now - 90d): band 0 = published before it, 1 = at or after it
    pkg = package(
        NPM,
        ["1.0.0", "2.0.0", "3.0.0"],
        bands={"1.0.0": 0, "2.0.0": 1, "3.0.0": UNKNOWN_BAND},
    )
    old = Selection(spec([{"older_than": "90d"}], {"default_version": False}), NOW)
    assert old.cutoffs == (NOW - timedelta(days=90),)
    assert selected(old, pkg) == ["1.0.0"]
    new = Selection(spec([{"newer_than": "90d"}], {"default_version": False}), NOW)
    assert selected(new, pkg) == ["2.0.0"]


def test_package_filters_match_exact_namespaces_and_whole_names() -> None:
    sel = Selection(spec([{"format": "npm", "namespace": "acme", "package_regex": "ui-.*"}]), NOW)
    assert sel.wants(PackageRef("npm", "acme", "ui-kit"))
    assert not sel.wants(PackageRef("npm", "acme-web", "ui-kit"))  # the API filter is a prefix
    assert not sel.wants(PackageRef("npm", None, "ui-kit"))
    assert not sel.wants(PackageRef("npm", "acme", "my-ui-kit"))
    assert not sel.wants(PackageRef("pypi", None, "ui-kit"))


def test_listing_pushes_shared_filters_to_the_server() -> None:
    sel = Selection(
        spec(
            [
                {
                    "format": "npm",
                    "namespace": "acme",
                    "package": "legacy-*",
                    "status": "Published",
                },
                {
                    "format": "npm",
                    "namespace": "acme",
                    "package": "legacy-*",
                    "status": "Published",
                },
            ]
        ),
        NOW,
    )
    listing = sel.listing()
    assert (listing.query.format, listing.query.namespace) == ("npm", "acme")
    assert listing.query.package_prefix == "legacy-"
    assert listing.status == "Published"


def test_listing_keeps_every_version_when_latest_or_keep_min_needs_them() -> None:
    rules = [{"status": "Published"}]
    assert Selection(spec(rules), NOW).listing().status == "Published"
    assert Selection(spec(rules, {"latest": 3}), NOW).listing().status is None
    assert Selection(spec(rules), NOW).listing(keep_min=2).status is None


def test_listing_pushes_nothing_when_select_rules_disagree() -> None:
    sel = Selection(spec([{"format": "npm"}, {"format": "pypi"}]), NOW)
    q = sel.listing().query
    assert (q.format, q.namespace, q.package_prefix) == (None, None, None)


def test_remaining_counts_versions_left_that_are_not_disposed() -> None:
    pkg = package(NPM, ["1.0.0", "2.0.0", "3.0.0", "4.0.0"], statuses={"1.0.0": "Disposed"})
    sel = Selection(spec([{"version_range": "<3.0.0"}], {"default_version": False}), NOW)
    decision = sel.evaluate(pkg)
    assert decision.live == 3
    assert decision.remaining == 2  # the Disposed 1.0.0 was not counted either way


@pytest.mark.parametrize(
    ("fmt", "text", "inside", "outside"),
    [
        ("npm", ">=2.0,<3.0", ["2.0.0", "2.10.0", "2.9.9-rc.1"], ["3.0.0-rc.1", "3.0.0", "10.0.0"]),
        ("npm", "2.x", ["2.0.0-rc.1", "2.5.0"], ["3.0.0", "20.0.0", "1.9.0"]),
        ("pypi", ">=2.0,<3.0", ["2.0", "2.9.post1"], ["3.0rc1", "3.0", "1.9"]),
        ("pypi", "2.x", ["2.4a1", "2.0"], ["3.0"]),
        ("maven", ">=2.0,<3.0", ["2.1-SNAPSHOT", "2.0"], ["3.0-SNAPSHOT", "3.0", "10.0"]),
        ("maven", "!=2.0", ["2.0.1"], ["2.0", "2.0.0"]),
        ("nuget", "2.*", ["2.0.0.1"], ["3.0.0"]),
        ("ruby", ">1.0", ["1.0.1"], ["1.0", "1.0.0.rc1"]),
    ],
)
def test_version_ranges_follow_the_format_order(
    fmt: str, text: str, inside: list[str], outside: list[str]
) -> None:
    r = parse_range(text)
    for v in inside:
        assert r.contains(fmt, v), (fmt, text, v)
    for v in outside:
        assert not r.contains(fmt, v), (fmt, text, v)


@pytest.mark.parametrize("text", [">=", "2.0,,3.0", ">=2.0<3.0", "~>2"])
def test_unreadable_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"range|cannot read|empty"):
        parse_range(text)


def test_ages_read_units_and_combinations() -> None:
    assert parse_age("90d") == timedelta(days=90)
    assert parse_age("1w2d") == timedelta(days=9)
    assert parse_age("36h") == timedelta(hours=36)
    with pytest.raises(ValueError, match="not an age"):
        parse_age("3 months")


def test_a_rules_file_with_an_unknown_key_names_file_key_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[select]]\nname = "x"\nolder_then = "90d"\n\n[keep]\nlatest = -1\n')
    with pytest.raises(UsageError) as info:
        load_rule_file(path)
    message = str(info.value)
    assert f"{path}: select[0].older_then: unknown key" in message
    assert f"{path}: keep.latest:" in message
    assert info.value.exit_code == 2


def test_a_rules_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[select]\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_rule_file(path)


def test_a_rules_file_needs_a_select_rule(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("[keep]\nlatest = 3\n")
    with pytest.raises(UsageError, match="select"):
        load_rule_file(path)


def test_a_range_bound_the_rule_formats_cannot_read_is_refused_at_load() -> None:
    with pytest.raises(UsageError, match=r"--version-range: '2\.0rc1' is not a npm version"):
        rules_from_flags({"format": ["npm"], "version_range": ">=2.0rc1"}, {})
    assert rules_from_flags({"format": ["pypi"], "version_range": ">=2.0rc1"}, {})


def test_flag_errors_name_the_flag() -> None:
    with pytest.raises(UsageError, match="--older-than: '9x' is not an age"):
        rules_from_flags({"older_than": "9x"}, {})
    with pytest.raises(UsageError, match="--namespace: npm scopes"):
        rules_from_flags({"namespace": ["@acme"]}, {})


@pytest.mark.parametrize("path", sorted(RULES_DIR.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_rules_file_loads_and_compiles(path: Path) -> None:
    rules = load_rule_file(path)
    sel = Selection(rules, NOW)
    assert sel.select
    assert sel.listing() is not None


def test_there_are_example_rules_files() -> None:
    assert len(list(RULES_DIR.glob("*.toml"))) >= 3
