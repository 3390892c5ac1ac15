"""The S3-checkpoint examples are valid: Kubernetes schema, Batch service model, IAM policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.session
import click
import kubernetes_validate
import yaml
from botocore.validate import ParamValidator

from bulkops.aws.s3url import parse_s3_url
from bulkops.cli import cli

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
VERSION = "1.30.0"
K8S_JOB = CONFIGS / "kubernetes" / "job-s3.yaml"
BATCH_JOB = CONFIGS / "aws-batch" / "job-definition-s3.json"
POLICY = CONFIGS / "aws-iam" / "policy-s3-checkpoint.json"


def _k8s_job() -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all(K8S_JOB.read_text()) if d]
    return dict(doc)


def _batch_job() -> dict[str, Any]:
    return dict(json.loads(BATCH_JOB.read_text()))


def _policy() -> dict[str, Any]:
    return dict(json.loads(POLICY.read_text()))


def _options_of(command: str) -> set[str]:
    with click.Context(cli) as ctx:
        found = cli.get_command(ctx, command)
        assert found is not None, command
        return {o for p in found.params for o in getattr(p, "opts", [])}


def _check_argv(argv: list[str]) -> str:
    """The checkpoint URL of a bulkops argv whose every flag its command has."""
    options = _options_of(argv[0])
    for word in argv[1:]:
        assert word.startswith("--"), word
        assert word.split("=")[0] in options, f"{argv[0]} has no {word}"
    (checkpoint,) = [w.split("=", 1)[1] for w in argv if w.startswith("--checkpoint=")]
    return checkpoint


def test_the_kubernetes_s3_job_is_valid_against_the_kubernetes_schema() -> None:
    kubernetes_validate.validate(_k8s_job(), VERSION, strict=True)


def test_the_kubernetes_s3_job_keeps_nothing_on_a_volume_and_checkpoints_to_s3() -> None:
    pod = _k8s_job()["spec"]["template"]["spec"]
    assert all("persistentVolumeClaim" not in v for v in pod["volumes"])
    assert all(set(v) == {"name", "emptyDir"} for v in pod["volumes"])
    (container,) = pod["containers"]
    url = parse_s3_url(_check_argv(container["args"]))
    assert "--resume-existing" in container["args"]
    (init,) = pod["initContainers"]
    manifest = next(a for a in container["args"] if a.startswith("--manifest="))
    assert init["args"][-1] == manifest.split("=", 1)[1]  # the copy lands where bulkops reads
    accounts = yaml.safe_load((CONFIGS / "kubernetes" / "serviceaccount.yaml").read_text())
    assert pod["serviceAccountName"] == accounts["metadata"]["name"]
    assert _policy_prefix() == f"{url.bucket}/{url.prefix}/*"


def test_the_batch_s3_job_definition_is_valid_against_botocores_batch_model() -> None:
    model = botocore.session.get_session().get_service_model("batch")
    shape = model.operation_model("RegisterJobDefinition").input_shape
    report = ParamValidator().validate(_batch_job(), shape)
    assert not report.has_errors(), report.generate_report()


def test_the_batch_validation_catches_a_misspelt_field() -> None:
    model = botocore.session.get_session().get_service_model("batch")
    shape = model.operation_model("RegisterJobDefinition").input_shape
    broken = {**_batch_job(), "retryStrateg": {"attempts": 2}}
    assert ParamValidator().validate(broken, shape).has_errors()


def test_the_batch_s3_job_runs_on_fargate_with_no_volume_and_retries_only_75() -> None:
    job = _batch_job()
    props = job["containerProperties"]
    assert job["platformCapabilities"] == ["FARGATE"]
    assert "volumes" not in props and "mountPoints" not in props
    url = parse_s3_url(_check_argv(props["command"]))
    assert _policy_prefix() == f"{url.bucket}/{url.prefix}/*"
    actions = {r.get("onExitCode"): r["action"] for r in job["retryStrategy"]["evaluateOnExit"]}
    assert actions["75"] == "RETRY"
    assert {actions[c] for c in ("2", "3", "77")} == {"EXIT"}


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _policy_prefix() -> str:
    (objects,) = [s for s in _policy()["Statement"] if s["Sid"] == "CheckpointObjects"]
    return str(objects["Resource"]).removeprefix("arn:aws:s3:::")


def test_the_iam_policy_names_only_real_actions_and_the_checkpoint_prefix() -> None:
    service = "codeartifact"
    operations = set(botocore.session.get_session().get_service_model(service).operation_names)
    statements = _policy()["Statement"]
    actions = [a for s in statements for a in _as_list(s["Action"])]
    assert {a.split(":")[1] for a in actions if a.startswith(f"{service}:")} <= operations
    s3 = {a for a in actions if a.startswith("s3:")}
    assert s3 == {
        "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketLocation",
    }  # fmt: skip
    (listing,) = [s for s in statements if s["Sid"] == "CheckpointListing"]
    bucket, prefix = _policy_prefix().split("/", 1)
    assert listing["Resource"] == f"arn:aws:s3:::{bucket}"
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [prefix]
