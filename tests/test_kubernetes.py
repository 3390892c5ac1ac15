"""The Kubernetes example is complete and valid: every manifest, every object it references."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bulkops.cli.config import JobFile

KUBERNETES = Path(__file__).resolve().parent.parent / "configs" / "kubernetes"
VERSION = "1.30.0"  # podFailurePolicy is GA from 1.31 and beta, on by default, from 1.26


def _documents() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, doc)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


@pytest.mark.parametrize(("path", "doc"), _documents(), ids=lambda v: getattr(v, "name", ""))
def test_every_manifest_is_valid_against_the_kubernetes_schema(
    path: Path, doc: dict[str, Any]
) -> None:
    # strict: an unknown or misspelt field fails too; the package ships its schemas (offline)
    kubernetes_validate.validate(doc, VERSION, strict=True)


def _by_kind() -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in _documents()}


def test_the_job_references_only_objects_the_example_defines() -> None:
    objects = _by_kind()
    job = objects[("Job", "bulkops-archive-legacy")]
    pod = job["spec"]["template"]["spec"]
    assert ("ServiceAccount", pod["serviceAccountName"]) in objects
    for volume in pod["volumes"]:
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            assert ("PersistentVolumeClaim", claim) in objects
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in objects
    loader = objects[("Pod", "bulkops-loader")]["spec"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in loader["volumes"]}
    assert claims == {"bulkops-checkpoints"}


def test_the_manifest_comes_from_the_claim_and_the_config_map_holds_only_the_job_file() -> None:
    objects = _by_kind()
    config_map = objects[("ConfigMap", "bulkops-archive-legacy")]
    assert set(config_map["data"]) == {"job.toml"}
    job_file = JobFile.model_validate(tomllib.loads(config_map["data"]["job.toml"]))
    assert job_file.operation == "set-status"
    container = objects[("Job", "bulkops-archive-legacy")]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["args"][0] == job_file.operation
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    manifest_dir = str(Path(job_file.manifest or "").parent)
    assert mounts[manifest_dir]["name"] == "checkpoints"  # the claim's volume
    assert mounts[manifest_dir]["subPath"] == "manifests"
    assert mounts[manifest_dir]["readOnly"] is True
    checkpoint = next(a for a in container["args"] if a.startswith("--checkpoint="))
    assert checkpoint.split("=", 1)[1].startswith("/checkpoints/")
    assert mounts["/checkpoints"]["subPath"] == "checkpoints"


def test_the_validator_rejects_a_misspelt_field_offline() -> None:
    job = _by_kind()[("Job", "bulkops-archive-legacy")]
    broken = {**job, "spec": {**job["spec"], "backofLimit": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)
