"""The AWS adapter's edges: setting the client up, translating errors, a package gone missing."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    DataNotFoundError,
    EndpointConnectionError,
    InvalidConfigError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
    UnknownServiceError,
)

from bulkops.aws.errors import translate
from bulkops.aws.session import AwsSettings, open_codeartifact
from bulkops.emulator import QuotaConfig, run_emulator
from bulkops.errors import (
    EXIT_ACCESS_DENIED,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    AccessDenied,
    FatalCall,
    NetworkError,
    RequestRejected,
    ResourceMissing,
    UsageError,
)
from bulkops.model import PackageRef
from tests.cli_support import bulkops, report_lines, rows_for, write_manifest

# ---- translate: only transport failures are transient --------------------------------


def _client_error(code: str, status: int, **extra: Any) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, "DeletePackageVersions")


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://x"),
        ConnectTimeoutError(endpoint_url="http://x"),
        ConnectionClosedError(endpoint_url="http://x"),
        ReadTimeoutError(endpoint_url="http://x"),
        aiohttp.ServerDisconnectedError(),
        TimeoutError(),
        ConnectionResetError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_failures_translate_to_a_transient_network_error(exc: Exception) -> None:
    assert isinstance(translate(exc, "DeletePackageVersions"), NetworkError)


@pytest.mark.parametrize(
    "exc",
    [
        UnknownServiceError(service_name="x", known_service_names="y"),
        DataNotFoundError(data_path="codeartifact"),
        InvalidConfigError(error_msg="retries is wrong"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_botocore_errors_are_fatal_with_their_message_and_exit_1(exc: Exception) -> None:
    out = translate(exc, "DeletePackageVersions")
    assert type(out) is FatalCall
    assert out.exit_code == EXIT_UNEXPECTED
    assert str(exc) in str(out)
    assert "DeletePackageVersions" in str(out)


@pytest.mark.parametrize(
    "exc",
    [
        NoCredentialsError(),
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        CredentialRetrievalError(provider="custom-process", error_msg="exit 1"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_credential_errors_during_a_call_are_access_denied(exc: Exception) -> None:
    out = translate(exc, "DeletePackageVersions")
    assert isinstance(out, AccessDenied)
    assert out.exit_code == EXIT_ACCESS_DENIED


def test_service_errors_keep_their_meaning() -> None:
    assert isinstance(translate(ParamValidationError(report="bad"), "X"), RequestRejected)
    missing = _client_error("ResourceNotFoundException", 404, resourceType="repository")
    assert isinstance(translate(missing, "X"), ResourceMissing)
    assert isinstance(translate(_client_error("AccessDeniedException", 403), "X"), AccessDenied)


# ---- setting the client up: region, profile, credentials ------------------------------


# No region in [default]; one profile whose credential process fails, one with half a key.
CONFIG = (
    "[default]\n"
    "[profile failing]\nregion = us-east-1\ncredential_process = /bin/false\n"
    "[profile partial]\nregion = us-east-1\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
)
_NOT_INHERITED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION")


def _aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The AWS config above, and no region or credentials in the environment."""
    (tmp_path / "config").write_text(CONFIG)
    for name in _NOT_INHERITED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("settings", "error", "words"),
    [
        (AwsSettings(), UsageError, "region"),
        (AwsSettings(region="us-east-1", profile="nope"), UsageError, "nope"),
        (AwsSettings(profile="failing"), AccessDenied, "credentials"),
        (AwsSettings(profile="partial"), AccessDenied, "credentials"),
    ],
    ids=["no-region", "unknown-profile", "credential-process-fails", "partial-credentials"],
)
async def test_a_client_that_cannot_be_set_up_is_a_usage_or_access_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: AwsSettings,
    error: type[Exception],
    words: str,
) -> None:
    _aws_home(tmp_path, monkeypatch)
    with pytest.raises(error, match=words) as caught:
        async with open_codeartifact(settings):
            pass
    assert type(caught.value) is error


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    manifest = write_manifest(
        tmp_path / "m.jsonl", [{"format": "pypi", "package": "p", "version": "1.0"}]
    )
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    (tmp_path / "config").write_text(CONFIG)
    env["AWS_CONFIG_FILE"] = str(tmp_path / "config")
    env["AWS_ENDPOINT_URL_CODEARTIFACT"] = "http://127.0.0.1:9"  # never reached
    argv = ["delete", "--domain", "acme", "--repository", "main", "--manifest", str(manifest)]
    argv += ["--checkpoint", str(tmp_path / "cp.journal"), "--execute", *args]
    return subprocess.run(
        [sys.executable, "-m", "bulkops", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_without_a_region_a_job_exits_2_saying_so(tmp_path: Path) -> None:
    run = _cli(tmp_path)
    assert run.returncode == EXIT_USAGE, run.stderr
    assert "no AWS region" in run.stderr
    assert "Traceback" not in run.stderr
    assert not list(tmp_path.glob("cp.journal*"))  # the client comes before the journal


def test_an_unknown_profile_exits_2_naming_it(tmp_path: Path) -> None:
    run = _cli(tmp_path, "--profile", "nope", "--region", "us-east-1")
    assert run.returncode == EXIT_USAGE, run.stderr
    assert "nope" in run.stderr
    assert "Traceback" not in run.stderr
    assert not list(tmp_path.glob("cp.journal*"))  # the client comes before the journal


def test_a_failing_credential_process_exits_77(tmp_path: Path) -> None:
    run = _cli(tmp_path, "--profile", "failing")
    assert run.returncode == EXIT_ACCESS_DENIED, run.stderr
    assert "credentials" in run.stderr
    assert "Traceback" not in run.stderr
    assert not list(tmp_path.glob("cp.journal*"))  # the client comes before the journal


def test_no_credentials_at_all_exits_77_before_any_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    run = _cli(tmp_path, "--region", "us-east-1")
    assert run.returncode == EXIT_ACCESS_DENIED, run.stderr
    assert "no AWS credentials" in run.stderr
    assert not list(tmp_path.glob("cp.journal*"))  # neither the journal nor its chunk list


# ---- a package that does not exist is per-version data, not a fatal error -------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("delete", ("--repository", "main")),
        ("dispose", ("--repository", "main")),
        ("set-status", ("--repository", "main", "--target-status", "Archived")),
        ("copy", ("--source-repository", "main", "--destination-repository", "release")),
    ],
)
async def test_a_missing_package_is_reported_not_found_and_the_rest_is_done(
    tmp_path: Path, command: str, extra: tuple[str, ...]
) -> None:
    async with run_emulator(generate=(8, 30), quotas=QuotaConfig.off()) as emu:
        before = emu.versions("main")
        real = sorted(k for k, v in before.items() if v.status == "Published")[:100]
        assert len(real) == 100
        ghost = (PackageRef("pypi", None, "never-existed"), "1.0")
        manifest = write_manifest(tmp_path / "m.jsonl", rows_for([*real, ghost]))
        cp = tmp_path / "cp.journal"
        run = await bulkops(emu, command, "--domain", "acme", *extra, "--manifest", manifest,
                            "--checkpoint", cp, "--execute", "--chunk-size", "30")  # fmt: skip
        assert run.code == 3, run.stderr
        after = emu.versions("release" if command == "copy" else "main")
        if command == "delete":
            assert not set(real) & set(after)
        else:
            wanted = {"dispose": "Disposed", "set-status": "Archived", "copy": "Published"}
            assert all(after[k].status == wanted[command] for k in real)
        report = await bulkops(emu, "report", cp, "--failed-only", "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(report.stdout)))
        assert [(r["package"], r["version"]) for r in rows] == [("never-existed", "1.0")]
        jsonl = report_lines((await bulkops(emu, "report", cp, "--format", "jsonl")).stdout)
        failures = [f for line in jsonl for f in line["failedVersions"].values()]
        assert [f["errorCode"] for f in failures] == ["NOT_FOUND"]
        assert "never-existed" in failures[0]["errorMessage"]


def test_a_job_client_leaves_parameter_checks_to_the_job_and_others_keep_them() -> None:
    from bulkops.aws.session import client_config

    settings = AwsSettings(region="us-east-1")
    assert client_config(settings, inputs_checked=True).parameter_validation is False
    assert client_config(settings, inputs_checked=False).parameter_validation is True


# ---- the adapter over real HTTP: an absent package is data, an absent repository stops --


@pytest.mark.asyncio
async def test_an_absent_package_is_data_and_an_absent_repository_stops_every_call() -> None:
    from bulkops.model import Chunk, JobSpec, Operation
    from bulkops.registry import Location

    gone = PackageRef("pypi", None, "never-existed")
    async with run_emulator(host="127.0.0.1", port=0, generate=None) as emu:
        emu.add_repository("main")
        settings = AwsSettings(endpoint_url=emu.endpoint_url, region="us-east-1")
        async with open_codeartifact(settings) as reg:
            spec = JobSpec(Operation.DELETE, "acme", "main")
            result = await reg.run_chunk(spec, Chunk.build(gone, ("1.0", "2.0")))
            assert {v: f["errorCode"] for v, f in result.failed.items()} == {
                "1.0": "NOT_FOUND",
                "2.0": "NOT_FOUND",
            }
            assert "never-existed" in result.failed["1.0"]["errorMessage"]
            whole = JobSpec(Operation.DELETE_PACKAGES, "acme", "main")
            assert (await reg.run_chunk(whole, Chunk.build(gone, ()))).deleted_package is None
            assert await reg.describe_version(spec, "main", gone, "1.0") is None
            here = Location("acme", "main")
            page = await reg.list_versions_page(
                here, gone, status=None, origin_type=None, token=None, page_size=10
            )
            assert (page.versions, page.next_token) == ((), None)
            assert await reg.describe_published(here, gone, "1.0") is None

            nowhere = Location("acme", "no-such-repository")
            with pytest.raises(ResourceMissing, match="no-such-repository"):
                await reg.describe_published(nowhere, gone, "1.0")
            with pytest.raises(ResourceMissing):
                await reg.describe_repository(nowhere)
            lost = JobSpec(Operation.DELETE, "acme", "no-such-repository")
            with pytest.raises(ResourceMissing) as caught:
                await reg.run_chunk(lost, Chunk.build(gone, ("1.0",)))
            assert caught.value.resource_type == "repository"
            assert caught.value.exit_code == EXIT_USAGE
