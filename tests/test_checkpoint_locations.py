"""Where a job is kept, as the command line takes it: a path, or an s3:// prefix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bulkops.errors import UsageError
from bulkops.jobs.prepare import default_checkpoint
from bulkops.journal.local import LocalFileStore
from bulkops.journal.location import as_checkpoint, job_in, open_store, spool_dir
from bulkops.model import JobSpec, Operation

SPEC = JobSpec(Operation.SET_STATUS, "acme", "main", target_status="Archived")


def test_a_path_stays_a_path_and_an_s3_url_stays_a_url() -> None:
    assert as_checkpoint("cp.journal") == Path("cp.journal")
    assert as_checkpoint("file:///tmp/cp.journal") == Path("/tmp/cp.journal")
    assert as_checkpoint("s3://ckpt/jobs/a") == "s3://ckpt/jobs/a"
    with pytest.raises(UsageError, match="unknown scheme 'gs'"):
        as_checkpoint("gs://ckpt/jobs/a")


def test_new_jobs_go_under_an_s3_prefix_as_under_a_directory() -> None:
    local = default_checkpoint(SPEC, Path("cps"))
    assert isinstance(local, Path) and local.parent == Path("cps")
    assert local.name.startswith("set-status-") and local.suffix == ".journal"
    remote = default_checkpoint(SPEC, "s3://ckpt/jobs/")
    assert isinstance(remote, str) and remote.startswith("s3://ckpt/jobs/set-status-")
    assert "//set-status" not in remote and not remote.endswith(".journal")
    assert job_in("s3://ckpt/jobs", "a") == "s3://ckpt/jobs/a"


def test_a_remote_job_keeps_no_scratch_file_beside_a_journal(tmp_path: Path) -> None:
    assert spool_dir(tmp_path / "cp.journal") == tmp_path
    assert spool_dir("s3://ckpt/jobs/a") != Path("s3:")
    assert isinstance(open_store(tmp_path / "cp.journal"), LocalFileStore)
    assert open_store("s3://ckpt/jobs/a").describe() == "s3://ckpt/jobs/a"


@pytest.mark.parametrize(
    ("checkpoint", "says"),
    [("s3://", "bucket"), ("s3://Bad_Bucket/x", "bucket"), ("gs://b/x", "unknown scheme")],
)
def test_a_bad_checkpoint_url_exits_2_before_anything_is_read(
    tmp_path: Path, checkpoint: str, says: str
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bulkops",
            "set-status",
            "--domain",
            "acme",
            "--repository",
            "main",
            "--manifest",
            str(tmp_path / "absent.jsonl"),
            "--target-status",
            "Archived",
            "--checkpoint",
            checkpoint,
            "--execute",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert says in run.stderr.lower()
