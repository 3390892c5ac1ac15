"""What each emulated operation does to the state, and the API-shaped answer it gives.

Each takes validated parameters (API member names) and the indices of versions a fault
marks SKIPPED; it raises `ApiError` for a whole-call failure (404) and otherwise returns
the response body. Per-version failures are data in `failedVersions`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import Any

from bulkops.emulator.state import Package, Repository, State, Version
from bulkops.emulator.wire import not_found, validation_error
from bulkops.model import PackageRef

Params = dict[str, Any]
Operation = Callable[[State, Params, frozenset[int]], dict[str, Any]]

DEFAULT_PAGE = 50


def targets(params: Params) -> list[str]:
    """The versions a call names, deduplicated in request order (the SKIPPED mask indexes it)."""
    named = dict.fromkeys(params.get("versions", ()))
    named.update(dict.fromkeys(params.get("versionRevisions", ())))
    return list(named)


def _ref(p: Params) -> PackageRef:
    return PackageRef(p["format"], p.get("namespace"), p["package"])


def _located(state: State, p: Params, repo_key: str = "repository") -> Repository:
    return state.repository(p["domain"], p.get("domainOwner"), p[repo_key])


def _fail(code: str, message: str) -> dict[str, str]:
    return {"errorCode": code, "errorMessage": message}


_SKIPPED = _fail("SKIPPED", "The version was not processed in this call; send it again")


def _batch(
    package: Package,
    p: Params,
    skipped: frozenset[int],
    act: Callable[[str, Version], dict[str, str] | None],
) -> dict[str, Any]:
    """Run the common guards, then `act` (which returns a failure or applies the change)."""
    ok: dict[str, dict[str, str]] = {}
    failed: dict[str, dict[str, str]] = {}
    pinned: dict[str, str] = p.get("versionRevisions") or {}
    expected = p.get("expectedStatus")
    versions = package.versions
    for i, name in enumerate(targets(p)):
        v = versions.get(name)
        if i in skipped:
            failed[name] = _SKIPPED
        elif v is None:
            failed[name] = _fail("NOT_FOUND", f"Package version {name} not found")
        elif name in pinned and pinned[name] != v.revision:
            failed[name] = _fail(
                "MISMATCHED_REVISION", f"Revision {pinned[name]} does not match {v.revision}"
            )
        elif expected is not None and v.status != expected:
            failed[name] = _fail("MISMATCHED_STATUS", f"Status is {v.status}, expected {expected}")
        elif (failure := act(name, v)) is not None:
            failed[name] = failure
        else:
            ok[name] = {"revision": v.revision, "status": v.status}
    return {"successfulVersions": ok, "failedVersions": failed}


def delete_package_versions(state: State, p: Params, skipped: frozenset[int]) -> dict[str, Any]:
    package = state.package(_located(state, p), _ref(p))
    versions = package.versions

    def act(name: str, v: Version) -> None:
        del versions[name]
        v.status = "Deleted"  # the answer reports the version as Deleted

    return _batch(package, p, skipped, act)


def dispose_package_versions(state: State, p: Params, skipped: frozenset[int]) -> dict[str, Any]:
    package = state.package(_located(state, p), _ref(p))

    def act(name: str, v: Version) -> None:
        v.status = "Disposed"  # disposing a Disposed version again succeeds

    return _batch(package, p, skipped, act)


def update_package_versions_status(
    state: State, p: Params, skipped: frozenset[int]
) -> dict[str, Any]:
    package = state.package(_located(state, p), _ref(p))
    target = p["targetStatus"]

    def act(name: str, v: Version) -> dict[str, str] | None:
        if v.status == "Disposed" and target != "Disposed":
            return _fail("NOT_ALLOWED", f"A Disposed version cannot become {target}")
        v.status = target
        return None

    return _batch(package, p, skipped, act)


def copy_package_versions(state: State, p: Params, skipped: frozenset[int]) -> dict[str, Any]:
    source_repo = _located(state, p, "sourceRepository")
    dest_repo = _located(state, p, "destinationRepository")
    ref = _ref(p)
    source = state.package(source_repo, ref)
    overwrite = bool(p.get("allowOverwrite"))
    dest_versions = dest.versions if (dest := dest_repo.packages.get(ref)) else {}

    def act(name: str, v: Version) -> dict[str, str] | None:
        if v.status == "Disposed":
            return _fail("NOT_ALLOWED", f"Version {name} is Disposed: its assets are gone")
        if name in dest_versions and not overwrite:
            return _fail("ALREADY_EXISTS", f"Version {name} exists in {dest_repo.name}")
        package = state.add_package(dest_repo, ref)
        old = package.versions.get(name)
        seq = old.seq if old is not None else state.next_seq()
        # Same revision as the source: an identical copy is recognisable by it.
        package.versions[name] = Version(
            v.status, v.revision, v.published, v.origin_type, v.entry, seq
        )
        return None

    return _batch(source, p, skipped, act)


def delete_package(state: State, p: Params, skipped: frozenset[int]) -> dict[str, Any]:
    repo = _located(state, p)
    package = state.package(repo, _ref(p))
    del repo.packages[package.ref]
    return {"deletedPackage": package.summary()}


def describe_package_version(state: State, p: Params, skipped: frozenset[int]) -> dict[str, Any]:
    repo = _located(state, p)
    ref = _ref(p)
    package = state.package(repo, ref)
    name = p["packageVersion"]
    v = package.versions.get(name)
    if v is None:
        raise not_found("package-version", name, f"Version {name} of {ref} not found")
    out: dict[str, Any] = {"format": ref.format}
    if ref.namespace is not None:
        out["namespace"] = ref.namespace
    out.update(
        packageName=ref.package,
        displayName=ref.package,
        version=name,
        summary=f"{ref.package} {name}",
        publishedTime=v.published,
        licenses=[],
        revision=v.revision,
        status=v.status,
        origin=v.origin(),
    )
    return {"packageVersion": out}


def describe_repository(state: State, p: Params, skipped: frozenset[int]) -> dict[str, Any]:
    domain = state.domain(p["domain"], p.get("domainOwner"))
    repo = state.repository(domain.name, domain.owner, p["repository"])
    return {
        "repository": {
            "name": repo.name,
            "administratorAccount": domain.owner,
            "domainName": domain.name,
            "domainOwner": domain.owner,
            "arn": f"arn:aws:codeartifact:us-east-1:{domain.owner}:repository/"
            f"{domain.name}/{repo.name}",
            "upstreams": [],
            "externalConnections": [],
        }
    }


def _encode_token(key: Iterable[float | int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode_token(token: str | None) -> list[Any] | None:
    if token is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        key = None
    if not isinstance(key, list) or not all(type(k) in (int, float) for k in key):
        raise validation_error("The nextToken is not one this service issued", "OTHER")
    return key


def _page(items: Iterable[tuple[list[Any], Any]], p: Params) -> tuple[list[Any], str | None]:
    """Items after the token's key, up to maxResults, and the next token if more remain."""
    after = _decode_token(p.get("nextToken"))
    limit = p.get("maxResults", DEFAULT_PAGE)
    page: list[Any] = []
    last: list[Any] = []
    for key, item in items:
        if after is not None and key <= after:
            continue
        if len(page) == limit:
            return page, _encode_token(last)
        page.append(item)
        last = key
    return page, None


def list_packages(state: State, p: Params, skipped: frozenset[int]) -> dict[str, Any]:
    repo = _located(state, p)
    fmt, ns, prefix = p.get("format"), p.get("namespace"), p.get("packagePrefix")
    publish, upstream = p.get("publish"), p.get("upstream")

    def matching() -> Iterable[tuple[list[Any], Package]]:
        for ref, package in repo.packages.items():
            if (
                (fmt is None or ref.format == fmt)
                and (ns is None or (ref.namespace is not None and ref.namespace.startswith(ns)))
                and (prefix is None or ref.package.startswith(prefix))
                and (publish is None or package.publish == publish)
                and (upstream is None or package.upstream == upstream)
            ):
                yield [package.seq], package

    page, token = _page(matching(), p)
    out: dict[str, Any] = {"packages": [package.summary() for package in page]}
    if token is not None:
        out["nextToken"] = token
    return out


def list_package_versions(state: State, p: Params, skipped: frozenset[int]) -> dict[str, Any]:
    ref = _ref(p)
    package = state.package(_located(state, p), ref)
    status, origin = p.get("status"), p.get("originType")
    chosen = [
        ([v.published, v.seq] if "sortBy" in p else [v.seq], (name, v))
        for name, v in package.versions.items()
        if (status is None or v.status == status) and (origin is None or v.origin_type == origin)
    ]
    if "sortBy" in p:  # PUBLISHED_TIME, the only sort: oldest first
        chosen.sort(key=lambda item: item[0])
    page, token = _page(chosen, p)
    out: dict[str, Any] = {"defaultDisplayVersion": package.default_display_version()}
    if out["defaultDisplayVersion"] is None:
        del out["defaultDisplayVersion"]
    out["format"] = ref.format
    if ref.namespace is not None:
        out["namespace"] = ref.namespace
    out["package"] = ref.package
    out["versions"] = [
        {"version": name, "revision": v.revision, "status": v.status, "origin": v.origin()}
        for name, v in page
    ]
    if token is not None:
        out["nextToken"] = token
    return out


OPERATIONS: dict[str, Operation] = {
    "ListPackages": list_packages,
    "ListPackageVersions": list_package_versions,
    "DescribePackageVersion": describe_package_version,
    "DescribeRepository": describe_repository,
    "DeletePackageVersions": delete_package_versions,
    "DisposePackageVersions": dispose_package_versions,
    "UpdatePackageVersionsStatus": update_package_versions_status,
    "CopyPackageVersions": copy_package_versions,
    "DeletePackage": delete_package,
}
