"""Every emulated operation through the real aioboto3 client, checked against the ground truth."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import aiohttp
import pytest
from emulator_helpers import client_for, ref_args, where

from bulkops.emulator import QuotaConfig, RunningEmulator, run_emulator
from bulkops.model import PackageRef

NPM = PackageRef("npm", "acme", "ui-kit")
PYPI = PackageRef("pypi", None, "acme-utils")


def _ref(item: dict[str, Any]) -> PackageRef:
    return PackageRef(item["format"], item.get("namespace"), item["package"])


@pytest.mark.asyncio
async def test_paginators_list_a_generated_50x300_repository_completely() -> None:
    async with (
        run_emulator(generate=(50, 300), quotas=QuotaConfig.off()) as emu,
        client_for(emu.endpoint_url) as c,
    ):
        packages: list[dict[str, Any]] = []
        pages = c.get_paginator("list_packages").paginate(
            **where(), PaginationConfig={"PageSize": 7}
        )
        async for page in pages:
            packages.extend(page["packages"])
        listed: dict[tuple[PackageRef, str], tuple[str, str]] = {}
        for item in packages:
            ref = _ref(item)
            pages = c.get_paginator("list_package_versions").paginate(
                **where(), **ref_args(ref), PaginationConfig={"PageSize": 120}
            )
            async for page in pages:
                assert page["package"] == ref.package
                for v in page["versions"]:
                    listed[(ref, v["version"])] = (v["status"], v["revision"])
        truth = emu.versions("main")
        assert len(packages) == 50
        assert len(listed) == 15_000
        assert listed == {key: (v.status, v.revision) for key, v in truth.items()}


@pytest.mark.asyncio
async def test_list_package_versions_returns_up_to_1000_per_page_and_package_fields(
    emu: RunningEmulator, client: Any
) -> None:
    ref = emu.packages("main")[0]
    page = await client.list_package_versions(**where(), **ref_args(ref), maxResults=1000)
    assert "nextToken" not in page
    assert len(page["versions"]) == 20
    assert page["format"] == ref.format and page["package"] == ref.package
    published = [v for (r, _), v in emu.versions("main").items() if r == ref]
    assert page["defaultDisplayVersion"] in {
        name for (r, name), v in emu.versions("main").items() if v.status == "Published"
    }
    assert all(v.status in {"Published", "Unlisted", "Archived", "Disposed"} for v in published)
    origin = page["versions"][0]["origin"]
    assert origin["originType"] in {"INTERNAL", "EXTERNAL"}
    assert origin["domainEntryPoint"]


@pytest.mark.asyncio
async def test_list_filters_status_origin_format_namespace_prefix_and_restrictions() -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu, client_for(emu.endpoint_url) as c:
        emu.add_version("main", "npm", "acme", "ui-kit", "1.0.0")
        emu.add_version("main", "npm", "acme", "ui-kit", "1.1.0", "Archived")
        emu.add_version("main", "npm", "acme", "ui-kit", "2.0.0", origin_type="EXTERNAL")
        emu.add_version("main", "npm", "acme-web", "ui-core", "0.1.0")
        emu.add_version("main", "pypi", None, "acme-utils", "1.4.0rc1")
        emu.state.domains["acme"].repositories["main"].packages[PYPI].upstream = "BLOCK"

        async def names(**kw: Any) -> list[str]:
            return [p["package"] for p in (await c.list_packages(**where(), **kw))["packages"]]

        assert await names() == ["ui-kit", "ui-core", "acme-utils"]
        assert await names(format="pypi") == ["acme-utils"]
        assert await names(namespace="acme") == ["ui-kit", "ui-core"]  # a prefix, as documented
        assert await names(namespace="acme-") == ["ui-core"]
        assert await names(packagePrefix="ui-") == ["ui-kit", "ui-core"]
        assert await names(upstream="BLOCK") == ["acme-utils"]
        assert await names(publish="BLOCK") == []

        async def versions(**kw: Any) -> list[str]:
            page = await c.list_package_versions(**where(), **ref_args(NPM), **kw)
            return [v["version"] for v in page["versions"]]

        assert await versions(status="Archived") == ["1.1.0"]
        assert await versions(originType="EXTERNAL") == ["2.0.0"]
        assert await versions(originType="INTERNAL") == ["1.0.0", "1.1.0"]


@pytest.mark.asyncio
async def test_describe_package_version_matches_ground_truth(
    emu: RunningEmulator, client: Any
) -> None:
    (ref, name), truth = next(iter(emu.versions("main").items()))
    got = (await client.describe_package_version(**where(), **ref_args(ref), packageVersion=name))[
        "packageVersion"
    ]
    assert got["version"] == name and got["packageName"] == ref.package
    assert got["revision"] == truth.revision and len(truth.revision) == 44
    assert got["status"] == truth.status
    assert got["publishedTime"].timestamp() == pytest.approx(truth.published_time, abs=1e-3)
    assert got["origin"]["originType"] == truth.origin_type


@pytest.mark.asyncio
async def test_deleting_1000_chosen_versions_removes_exactly_those() -> None:
    async with (
        run_emulator(generate=(20, 100), quotas=QuotaConfig.off()) as emu,
        client_for(emu.endpoint_url) as c,
    ):
        before = emu.versions("main")
        chosen = set(random.Random(7).sample(sorted(before, key=str), 1000))
        by_package: dict[PackageRef, list[str]] = defaultdict(list)
        for ref, name in sorted(chosen, key=str):
            by_package[ref].append(name)
        deleted = 0
        for ref, names in by_package.items():
            for start in range(0, len(names), 100):
                chunk = names[start : start + 100]
                answer = await c.delete_package_versions(**where(), **ref_args(ref), versions=chunk)
                assert answer["failedVersions"] == {}
                assert {v["status"] for v in answer["successfulVersions"].values()} == {"Deleted"}
                deleted += len(answer["successfulVersions"])
        after = emu.versions("main")
        assert deleted == 1000
        assert set(before) - set(after) == chosen
        assert after == {key: v for key, v in before.items() if key not in chosen}
        ref, name = next(iter(chosen))
        with pytest.raises(c.exceptions.ResourceNotFoundException) as err:
            await c.describe_package_version(**where(), **ref_args(ref), packageVersion=name)
        assert err.value.response["resourceType"] == "package-version"
        listed = await c.list_package_versions(**where(), **ref_args(ref), maxResults=1000)
        assert name not in {v["version"] for v in listed["versions"]}


@pytest.mark.asyncio
async def test_dispose_sets_disposed_keeps_revision_and_is_idempotent() -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu, client_for(emu.endpoint_url) as c:
        rev = emu.add_version("main", "npm", "acme", "ui-kit", "1.0.0", "Archived")
        for _ in range(2):
            answer = await c.dispose_package_versions(
                **where(), **ref_args(NPM), versions=["1.0.0"], versionRevisions={"1.0.0": rev}
            )
            assert answer["successfulVersions"] == {
                "1.0.0": {"revision": rev, "status": "Disposed"}
            }
        assert emu.version("main", "npm", "acme", "ui-kit", "1.0.0").status == "Disposed"


@pytest.mark.asyncio
async def test_update_status_round_trips_archived_and_unlisted_and_keeps_revisions() -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu, client_for(emu.endpoint_url) as c:
        revs = {
            "1.0.0": emu.add_version("main", "npm", "acme", "ui-kit", "1.0.0", "Archived"),
            "1.1.0": emu.add_version("main", "npm", "acme", "ui-kit", "1.1.0", "Unlisted"),
            "1.2.0": emu.add_version("main", "npm", "acme", "ui-kit", "1.2.0"),
        }
        answer = await c.update_package_versions_status(
            **where(), **ref_args(NPM), versions=list(revs), targetStatus="Published"
        )
        assert answer["failedVersions"] == {}
        assert answer["successfulVersions"] == {
            v: {"revision": r, "status": "Published"} for v, r in revs.items()
        }
        answer = await c.update_package_versions_status(
            **where(), **ref_args(NPM), versions=["1.2.0"], targetStatus="Unlisted"
        )
        view = emu.version("main", "npm", "acme", "ui-kit", "1.2.0")
        assert view is not None and (view.status, view.revision) == ("Unlisted", revs["1.2.0"])


@pytest.mark.asyncio
async def test_copy_gives_the_destination_the_source_revision_and_honours_overwrite() -> None:
    async with run_emulator(quotas=QuotaConfig.off()) as emu, client_for(emu.endpoint_url) as c:
        rev = emu.add_version("main", "pypi", None, "acme-utils", "1.4.0.post1")
        args = {"domain": "acme", "sourceRepository": "main", "destinationRepository": "release"}
        answer = await c.copy_package_versions(
            **args, **ref_args(PYPI), versions=["1.4.0.post1"], includeFromUpstream=False
        )
        assert answer["successfulVersions"] == {
            "1.4.0.post1": {"revision": rev, "status": "Published"}
        }
        assert emu.version("release", "pypi", None, "acme-utils", "1.4.0.post1").revision == rev
        again = await c.copy_package_versions(
            **args, **ref_args(PYPI), versionRevisions={"1.4.0.post1": rev}
        )
        assert again["failedVersions"]["1.4.0.post1"]["errorCode"] == "ALREADY_EXISTS"
        forced = await c.copy_package_versions(
            **args, **ref_args(PYPI), versions=["1.4.0.post1"], allowOverwrite=True
        )
        assert list(forced["successfulVersions"]) == ["1.4.0.post1"]


@pytest.mark.asyncio
async def test_delete_package_removes_it_with_all_versions(
    emu: RunningEmulator, client: Any
) -> None:
    ref = emu.packages("main")[2]  # maven: a namespace and an origin configuration
    answer = await client.delete_package(**where(), **ref_args(ref))
    deleted = answer["deletedPackage"]
    assert _ref(deleted) == ref
    assert set(deleted["originConfiguration"]["restrictions"]) == {"publish", "upstream"}
    assert ref not in emu.packages("main")
    assert not any(r == ref for r, _ in emu.versions("main"))
    for call in (client.delete_package, client.list_package_versions):
        with pytest.raises(client.exceptions.ResourceNotFoundException) as err:
            await call(**where(), **ref_args(ref))
        assert err.value.response["resourceType"] == "package"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("overrides", "resource_type"),
    [
        ({"domain": "nope"}, "domain"),
        ({"domainOwner": "999999999999"}, "domain"),
        ({"repository": "nope"}, "repository"),
        ({"package": "nope"}, "package"),
    ],
)
async def test_missing_domain_repository_or_package_is_404_naming_the_resource(
    emu: RunningEmulator, client: Any, overrides: dict[str, str], resource_type: str
) -> None:
    ref = emu.packages("main")[0]
    kw = {**where(), **ref_args(ref), **overrides}
    with pytest.raises(client.exceptions.ResourceNotFoundException) as err:
        await client.dispose_package_versions(**kw, versions=["1.0.0"])
    assert err.value.response["resourceType"] == resource_type
    assert err.value.response["Error"]["Message"]


@pytest.mark.asyncio
async def test_the_right_domain_owner_is_accepted(emu: RunningEmulator, client: Any) -> None:
    page = await client.list_packages(**where(), domainOwner=emu.account_id)
    assert len(page["packages"]) == 8


@pytest.mark.asyncio
async def test_unemulated_operations_and_unknown_paths_answer_errors(
    emu: RunningEmulator, client: Any
) -> None:
    with pytest.raises(client.exceptions.ClientError) as err:
        await client.describe_domain(domain="acme")
    assert err.value.response["Error"]["Code"] == "NotImplementedException"
    assert "not implemented by the emulator" in err.value.response["Error"]["Message"]
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.endpoint_url}/v2/nothing") as resp,
    ):
        assert resp.status == 404
        assert resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"
