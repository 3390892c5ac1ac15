"""State export and seed-file loading: one JSON format both ways (described in `state`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bulkops.emulator.state import DEFAULT_ACCOUNT, State
from bulkops.model import PackageRef


def export_state(state: State) -> dict[str, Any]:
    """The whole ground truth as plain JSON-able data."""
    domains: dict[str, Any] = {}
    for d in state.domains.values():
        repos: dict[str, Any] = {}
        for r in d.repositories.values():
            packages = []
            for p in r.packages.values():
                item = p.summary()
                item["versions"] = {
                    name: {
                        "status": v.status,
                        "revision": v.revision,
                        "publishedTime": v.published,
                        "originType": v.origin_type,
                        "entryPoint": v.entry,
                    }
                    for name, v in p.versions.items()
                }
                packages.append(item)
            repos[r.name] = {"packages": packages}
        domains[d.name] = {"owner": d.owner, "repositories": repos}
    return {"accountId": state.account_id, "domains": domains}


def load_state(data: dict[str, Any], seed: int = 0, account_id: str | None = None) -> State:
    """A State from exported data or a hand-written seed; raises ValueError naming the bad item."""
    if not isinstance(data, dict) or not isinstance(data.get("domains"), dict):
        raise ValueError("a state file needs a top-level object with a 'domains' object")
    state = State(account_id or data.get("accountId") or DEFAULT_ACCOUNT, seed)
    for domain_name, domain in data["domains"].items():
        state.add_domain(domain_name, domain.get("owner"))
        for repo_name, repo_data in (domain.get("repositories") or {}).items():
            repo = state.add_repository(repo_name, domain_name)
            for i, p in enumerate(repo_data.get("packages") or []):
                where = f"{domain_name}/{repo_name} package #{i + 1}"
                try:
                    ref = PackageRef(p["format"], p.get("namespace"), p["package"])
                except (KeyError, TypeError) as exc:
                    raise ValueError(f"{where}: needs 'format' and 'package'") from exc
                package = state.add_package(repo, ref)
                restrictions = (p.get("originConfiguration") or {}).get("restrictions") or {}
                package.publish = restrictions.get("publish", "ALLOW")
                package.upstream = restrictions.get("upstream", "ALLOW")
                versions = p.get("versions") or {}
                if isinstance(versions, list):
                    versions = {name: {} for name in versions}
                for name, v in versions.items():
                    state.add_version(
                        repo,
                        ref,
                        name,
                        v.get("status", "Published"),
                        revision=v.get("revision"),
                        published_time=v.get("publishedTime"),
                        origin_type=v.get("originType", "INTERNAL"),
                        domain=domain_name,
                    )
                    if "entryPoint" in v:
                        package.versions[name].entry = v["entryPoint"]
    return state


def read_seed_file(path: str | Path, seed: int = 0, account_id: str | None = None) -> State:
    """Load a seed (or exported state) JSON file."""
    with open(path, encoding="utf-8") as f:
        return load_state(json.load(f), seed, account_id)
