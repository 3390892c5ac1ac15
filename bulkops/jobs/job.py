"""The `Job` value: what to do, where its journal is, and with which settings.

Starting a job, resuming it, a guarded run and both phases of a safe delete each take
one `Job`; the CLI builds it from its options once, so no argument list is repeated.

    job = Job(spec, checkpoint, EngineSettings(...), AwsSettings(...), Rails(keep_min=3))
    result = supervise(lambda stop, stats: run_new_guarded(job, prepared, header, stop, stats),
                       job.supervision)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bulkops.aws.session import AwsSettings
from bulkops.engine.engine import EngineSettings
from bulkops.jobs.progress import ProgressMode
from bulkops.jobs.rails import Rails
from bulkops.journal.location import Checkpoint
from bulkops.model import JobSpec


@dataclass(frozen=True, slots=True)
class Supervision:
    """How a run is watched: when it is stopped (--max-duration) and how progress shows."""

    max_duration: float | None = None
    progress: ProgressMode = "off"
    progress_interval: float = 10.0


@dataclass(frozen=True, slots=True)
class Job:
    """One job: its spec, its checkpoint, and the settings of the run that carries it."""

    spec: JobSpec
    checkpoint: Checkpoint  # a local journal file or an s3:// URL
    settings: EngineSettings = field(default_factory=EngineSettings)
    aws: AwsSettings = field(default_factory=AwsSettings)
    rails: Rails = field(default_factory=Rails)
    supervision: Supervision = field(default_factory=Supervision)

    def phase(self, spec: JobSpec, checkpoint: Checkpoint, rails: Rails | None = None) -> Job:
        """Another job run with the same settings: a safe delete's phase, a resumed job."""
        return replace(self, spec=spec, checkpoint=checkpoint, rails=rails or Rails())
