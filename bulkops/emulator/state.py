"""The emulator's ground truth: domains, repositories, packages and versions, with export and load.

The export format is also the seed file format, so export → load round-trips:

    {"accountId": "111122223333",
     "domains": {"acme": {"owner": "111122223333", "repositories": {"main": {"packages": [
        {"format": "npm", "namespace": "acme", "package": "ui-kit",
         "originConfiguration": {"restrictions": {"publish": "ALLOW", "upstream": "ALLOW"}},
         "versions": {"1.0.0": {"status": "Published", "revision": "…", "publishedTime": 1.7e9,
                                 "originType": "INTERNAL", "entryPoint": "main"}}}]}}}}}

In a seed file `versions` may also be a plain list of version strings, and everything but
format, package and the version strings may be left out.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from bulkops.aws.shapes import violation
from bulkops.emulator.wire import not_found
from bulkops.model import NAMESPACE_FORBIDDEN, NAMESPACE_REQUIRED, STATUSES, PackageRef

DEFAULT_ACCOUNT = "111122223333"
DEFAULT_DOMAIN = "acme"

# The upstream connection a format's EXTERNAL versions come from.
EXTERNAL_CONNECTIONS: dict[str, str] = {
    "npm": "public:npmjs",
    "pypi": "public:pypi",
    "maven": "public:maven-central",
    "nuget": "public:nuget-org",
    "ruby": "public:ruby-gems-org",
    "cargo": "public:crates-io",
}


@dataclass(slots=True)
class Version:
    """One package version; `entry` is the repository or external connection it entered by."""

    status: str
    revision: str
    published: float
    origin_type: str
    entry: str
    seq: int

    def origin(self) -> dict[str, Any]:
        key = "externalConnectionName" if self.origin_type == "EXTERNAL" else "repositoryName"
        return {"domainEntryPoint": {key: self.entry}, "originType": self.origin_type}


@dataclass(slots=True)
class Package:
    ref: PackageRef
    seq: int
    publish: str = "ALLOW"
    upstream: str = "ALLOW"
    versions: dict[str, Version] = field(default_factory=dict)

    def origin_configuration(self) -> dict[str, Any]:
        return {"restrictions": {"publish": self.publish, "upstream": self.upstream}}

    def summary(self) -> dict[str, Any]:
        """The API's PackageSummary."""
        out: dict[str, Any] = {"format": self.ref.format}
        if self.ref.namespace is not None:
            out["namespace"] = self.ref.namespace
        out["package"] = self.ref.package
        out["originConfiguration"] = self.origin_configuration()
        return out

    def default_display_version(self) -> str | None:
        """The most recently published version still Published, as the service shows it."""
        best: tuple[float, int] | None = None
        found = None
        for name, v in self.versions.items():
            if v.status == "Published" and (best is None or (v.published, v.seq) > best):
                best, found = (v.published, v.seq), name
        return found


@dataclass(slots=True)
class Repository:
    name: str
    packages: dict[PackageRef, Package] = field(default_factory=dict)


@dataclass(slots=True)
class Domain:
    name: str
    owner: str
    repositories: dict[str, Repository] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VersionView:
    """A read-only snapshot of one version, for tests and tools."""

    status: str
    revision: str
    published_time: float
    origin_type: str


def make_revision(seed: int, *parts: str) -> str:
    """A revision as the service shows them (44-character base64), fixed by seed and parts."""
    digest = hashlib.sha256("\0".join((str(seed), *parts)).encode()).digest()
    return base64.b64encode(digest).decode()


def check_ref(ref: PackageRef) -> None:
    """Raise ValueError unless the package's names pass the API's patterns and namespace rules."""
    for shape, value in (("PackageFormat", ref.format), ("PackageName", ref.package)):
        if (why := violation(shape, value)) is not None:
            raise ValueError(f"{ref}: {shape} {why}")
    if ref.namespace is not None and (why := violation("PackageNamespace", ref.namespace)):
        raise ValueError(f"{ref}: namespace {why}")
    if ref.format in NAMESPACE_REQUIRED and ref.namespace is None:
        raise ValueError(f"{ref}: {ref.format} packages need a namespace")
    if ref.format in NAMESPACE_FORBIDDEN and ref.namespace is not None:
        raise ValueError(f"{ref}: {ref.format} packages have no namespace")


class State:
    """All domains of the emulated account, and the lookups the operations need."""

    def __init__(self, account_id: str = DEFAULT_ACCOUNT, seed: int = 0) -> None:
        self.account_id = account_id
        self.seed = seed
        self.domains: dict[str, Domain] = {}
        self._seq = itertools.count(1)
        self._nonce = itertools.count(1)

    def next_seq(self) -> int:
        """A position later than every item so far (pagination tokens rest on it)."""
        return next(self._seq)

    # ---- building -------------------------------------------------------------------

    def add_domain(self, name: str = DEFAULT_DOMAIN, owner: str | None = None) -> Domain:
        """The domain `name`, created (owned by `owner` or the account) if absent."""
        if (why := violation("DomainName", name)) is not None:
            raise ValueError(f"domain {name!r} {why}")
        return self.domains.setdefault(name, Domain(name, owner or self.account_id))

    def add_repository(self, name: str, domain: str = DEFAULT_DOMAIN) -> Repository:
        """The repository `name` in `domain`, creating both if absent."""
        if (why := violation("RepositoryName", name)) is not None:
            raise ValueError(f"repository {name!r} {why}")
        return self.add_domain(domain).repositories.setdefault(name, Repository(name))

    def add_package(self, repo: Repository, ref: PackageRef) -> Package:
        package = repo.packages.get(ref)
        if package is None:
            check_ref(ref)
            package = repo.packages[ref] = Package(ref, self.next_seq())
        return package

    def add_version(
        self,
        repo: Repository,
        ref: PackageRef,
        version: str,
        status: str = "Published",
        *,
        revision: str | None = None,
        published_time: float | None = None,
        origin_type: str = "INTERNAL",
        domain: str = DEFAULT_DOMAIN,
    ) -> str:
        """Publish (or replace) one version and return its revision."""
        if (why := violation("PackageVersion", version)) is not None:
            raise ValueError(f"version {version!r} {why}")
        if status not in STATUSES or status == "Deleted":
            raise ValueError(f"status {status!r} is not a status a version can have")
        package = self.add_package(repo, ref)
        if revision is None:
            nonce = str(next(self._nonce))
            parts = (domain, repo.name, str(ref), version, nonce)
            revision = make_revision(self.seed, *parts)
        entry = repo.name
        if origin_type == "EXTERNAL":
            entry = EXTERNAL_CONNECTIONS.get(ref.format, "public:external")
        when = time.time() if published_time is None else published_time
        old = package.versions.get(version)
        seq = old.seq if old is not None else self.next_seq()
        package.versions[version] = Version(status, revision, when, origin_type, entry, seq)
        return revision

    # ---- lookups that answer like the service ---------------------------------------

    def domain(self, name: str, owner: str | None) -> Domain:
        found = self.domains.get(name)
        if found is None or (owner is not None and owner != found.owner):
            raise not_found("domain", name, f"Domain {name} not found (owner {owner or '-'})")
        return found

    def repository(self, domain: str, owner: str | None, name: str) -> Repository:
        repo = self.domain(domain, owner).repositories.get(name)
        if repo is None:
            raise not_found("repository", name, f"Repository {name} not found in {domain}")
        return repo

    @staticmethod
    def package(repo: Repository, ref: PackageRef) -> Package:
        package = repo.packages.get(ref)
        if package is None:
            raise not_found("package", ref.package, f"Package {ref} not found in {repo.name}")
        return package

    # ---- ground truth ---------------------------------------------------------------

    def versions(
        self, repository: str, domain: str = DEFAULT_DOMAIN
    ) -> dict[tuple[PackageRef, str], VersionView]:
        """Every version of a repository: (package, version) → status, revision, time, origin."""
        repo = self.domains[domain].repositories[repository]
        return {
            (ref, name): VersionView(v.status, v.revision, v.published, v.origin_type)
            for ref, p in repo.packages.items()
            for name, v in p.versions.items()
        }

    def status_counts(self) -> dict[str, dict[str, int]]:
        """Versions per status in each repository, keyed "domain/repository"."""
        out: dict[str, dict[str, int]] = {}
        for d in self.domains.values():
            for r in d.repositories.values():
                counts = out[f"{d.name}/{r.name}"] = {}
                for p in r.packages.values():
                    for v in p.versions.values():
                        counts[v.status] = counts.get(v.status, 0) + 1
        return out
