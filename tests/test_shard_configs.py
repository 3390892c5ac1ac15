"""The sharded examples are valid and agree with bulkops: a Kubernetes Indexed Job and an
AWS Batch array job, checked against the Kubernetes schema and botocore's Batch model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import botocore.session
import click
import kubernetes_validate
import pytest
import yaml
from botocore.validate import ParamValidator

from bulkops.aws.s3url import parse_s3_url
from bulkops.cli import cli
from bulkops.jobs.shards import Shard, resolve_shard

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
VERSION = "1.33.0"  # backoffLimitPerIndex and FailIndex are GA from 1.33
INDEXED = CONFIGS / "kubernetes" / "indexed-job.yaml"
ARRAY = CONFIGS / "aws-batch" / "array-job.json"
FAIL_CODES = {2, 3, 77}


def _indexed() -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all(INDEXED.read_text()) if d]
    return dict(doc)


def _array() -> dict[str, Any]:
    return dict(json.loads(ARRAY.read_text()))


def _argv(argv: list[str]) -> dict[str, str]:
    """A bulkops argv's options, each checked to be one its command has."""
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, argv[0])
        assert command is not None, argv[0]
        options = {o for p in command.params for o in getattr(p, "opts", [])}
    found = {}
    for word in argv[1:]:
        name, _, value = word.partition("=")
        assert name in options, f"{argv[0]} has no {name}"
        found[name] = value
    return found


def test_the_indexed_job_is_valid_against_the_kubernetes_schema() -> None:
    kubernetes_validate.validate(_indexed(), VERSION, strict=True)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    doc = copy.deepcopy(_indexed())
    doc["spec"]["backoffLimitPerIndx"] = doc["spec"].pop("backoffLimitPerIndex")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_indexed_job_runs_one_pod_per_shard_and_fails_only_the_index() -> None:
    spec = _indexed()["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    args = _argv(container["args"])
    shards = int(args["--shards"])
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == shards
    assert spec["backoffLimitPerIndex"] >= 1
    parse_s3_url(args["--checkpoint"])
    rules = spec["podFailurePolicy"]["rules"]
    by_codes = {
        (r["action"], frozenset(r["onExitCodes"]["values"])) for r in rules if "onExitCodes" in r
    }
    assert by_codes == {("FailIndex", frozenset(FAIL_CODES)), ("Ignore", frozenset({75}))}
    conditions = [r for r in rules if "onPodConditions" in r]
    assert [(r["action"], r["onPodConditions"][0]["type"]) for r in conditions] == [
        ("Ignore", "DisruptionTarget")
    ]
    accounts = yaml.safe_load((CONFIGS / "kubernetes" / "serviceaccount.yaml").read_text())
    assert pod["serviceAccountName"] == accounts["metadata"]["name"]
    assert all(set(v) == {"name", "emptyDir"} for v in pod["volumes"])  # nothing persistent
    # every pod's index, as Kubernetes sets it, is one shard of the job
    got = [resolve_shard(shards, None, {"JOB_COMPLETION_INDEX": str(k)}, remote=True)
           for k in range(spec["completions"])]  # fmt: skip
    assert got == [Shard(k, shards) for k in range(shards)]


def test_the_array_job_is_valid_against_botocores_batch_model() -> None:
    model = botocore.session.get_session().get_service_model("batch")
    doc = _array()
    for operation, key in (
        ("RegisterJobDefinition", "registerJobDefinition"),
        ("SubmitJob", "submitJob"),
    ):
        shape = model.operation_model(operation).input_shape
        report = ParamValidator().validate(doc[key], shape)
        assert not report.has_errors(), report.generate_report()


def test_the_array_job_runs_on_fargate_with_no_volume_and_takes_its_shards_from_batch() -> None:
    doc = _array()
    definition, submit = doc["registerJobDefinition"], doc["submitJob"]
    assert definition["platformCapabilities"] == ["FARGATE"]
    container = definition["containerProperties"]
    assert "volumes" not in container and "mountPoints" not in container
    args = _argv(container["command"])
    parse_s3_url(args["--checkpoint"])
    assert "--shards" not in args  # AWS_BATCH_JOB_ARRAY_SIZE gives it
    assert submit["jobDefinition"] == definition["jobDefinitionName"]
    size = submit["arrayProperties"]["size"]
    assert 2 <= size <= 10_000
    on_exit = {e.get("onExitCode"): e["action"] for e in submit["retryStrategy"]["evaluateOnExit"]}
    assert on_exit == {"75": "RETRY", "2": "EXIT", "3": "EXIT", "77": "EXIT", None: "RETRY"}
    env = {"AWS_BATCH_JOB_ARRAY_SIZE": str(size)}
    got = [resolve_shard(None, None, {**env, "AWS_BATCH_JOB_ARRAY_INDEX": str(k)}, remote=True)
           for k in range(size)]  # fmt: skip
    assert got == [Shard(k, size) for k in range(size)]
