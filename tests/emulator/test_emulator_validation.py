"""Requests botocore lets through come back as ValidationException naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from bulkops.emulator import RunningEmulator
from bulkops.emulator.validate import validator

KEYS = {"domain": "acme", "repository": "main"}
NPM = {"format": "npm", "namespace": "acme", "package": "ui-kit"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("call", "kwargs", "field"),
    [
        ("delete_package_versions", {**NPM, "versions": [f"1.0.{i}" for i in range(101)]},
         "versions"),
        ("delete_package_versions", {**NPM, "format": "NPM", "versions": ["1.0.0"]}, "format"),
        ("delete_package_versions",
         {"format": "maven", "package": "core", "versions": ["1.0.0"]}, "namespace"),
        ("dispose_package_versions",
         {"format": "pypi", "namespace": "acme", "package": "x", "versions": ["1"]}, "namespace"),
        ("dispose_package_versions", {**NPM, "package": "a/b", "versions": ["1"]}, "package"),
        ("dispose_package_versions", {**NPM, "versions": ["1 0"]}, "versions.1.member"),
        ("update_package_versions_status",
         {**NPM, "versions": ["1"], "targetStatus": "Disposed"}, "targetStatus"),
        ("list_package_versions", {**NPM, "maxResults": 1001}, "maxResults"),
        ("list_packages", {"format": "cargo", "namespace": "acme"}, "namespace"),
    ],
)  # fmt: skip
async def test_invalid_requests_are_rejected_with_the_field_named(
    emu: RunningEmulator, client: Any, call: str, kwargs: dict[str, Any], field: str
) -> None:
    before = emu.export_state()
    with pytest.raises(client.exceptions.ValidationException) as err:
        await getattr(client, call)(**KEYS, **kwargs)
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert f"'{field}'" in response["Error"]["Message"]
    assert response["reason"] == "FIELD_VALIDATION_FAILED"
    assert emu.export_state() == before


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "choice",
    [{"versions": ["1"], "versionRevisions": {"1": "r"}}, {}],
)
async def test_copy_needs_exactly_one_of_versions_and_version_revisions(
    client: Any, choice: dict[str, Any]
) -> None:
    with pytest.raises(client.exceptions.ValidationException) as err:
        await client.copy_package_versions(
            domain="acme", sourceRepository="main", destinationRepository="release",
            **NPM, **choice,
        )  # fmt: skip
    assert "versionRevisions" in err.value.response["Error"]["Message"]


def test_validators_are_compiled_from_the_model_with_query_names() -> None:
    check = validator("DescribePackageVersion")
    wire = {f.wire: f.member for f in check.query}
    assert wire["version"] == "packageVersion"
    assert wire["domain-owner"] == "domainOwner"
    assert not check.has_body
    params = check({"domain": "acme", "repository": "main", **NPM, "version": "1.0.0"}, b"")
    assert params["packageVersion"] == "1.0.0"


def test_a_body_that_is_not_json_is_rejected_as_unparseable() -> None:
    from bulkops.emulator.wire import ApiError

    with pytest.raises(ApiError) as err:
        validator("DeletePackageVersions")({**KEYS, **NPM}, b"{nope")
    assert err.value.status == 400 and err.value.fields["reason"] == "CANNOT_PARSE"
