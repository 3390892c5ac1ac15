"""The exception tree of bulkops; each class carries the process exit code it maps to.

    BulkopsError (1)                   anything unexpected
    ├── NothingToDo (0)                an empty manifest: success, said plainly, nothing sent
    ├── UsageError (2)                 bad flags, config or input; nothing was sent
    │   ├── ManifestError (2)          a manifest row is invalid (file, line, field)
    │   │   └── ManifestInvalid (2)    several rows are: the first ones, and how many in all
    │   ├── Refused (2)                a safety rail refused the job
    │   ├── NotAJournal (2)            a checkpoint argument that is no bulkops journal at all
    │   └── ManifestChanged (2)        resume found a manifest that differs from the journal's
    ├── JournalCorrupt (1)             the journal is damaged somewhere other than its torn tail
    ├── ChunkListCorrupt (1)           the chunk list is missing, damaged, or not the journal's
    ├── Unreachable (75)               the pre-flight check got no answer; nothing was sent
    ├── JournalBusy (75)               another live run holds the journal; retry once it ends
    ├── JournalFull (75)               the journal's file system is full; resume once freed
    ├── LeaseLost (75)                 the journal's lease was not renewed in time, or taken over
    ├── StoreUnavailable (75)          the checkpoint store did not answer after retries
    └── FatalCall (1)                  a call failure that stops the run
        ├── AccessDenied (77)          AccessDeniedException, or no usable credentials
        ├── QuotaExceeded (1)          ServiceQuotaExceededException
        ├── RequestRejected (2)        ValidationException from the service
        └── ResourceMissing (2)        the domain or repository does not exist

    CallFailed                         transient: the engine retries it, never the user's
    ├── Throttled                      429, after Retry-After when the service gives one
    ├── ServerError                    5xx
    ├── Conflict                       409
    ├── NetworkError                   the connection dropped
    └── CallTimeout                    no answer within the call timeout

A run stopped by a signal or --max-duration is no error: it ends with its RunResult, and
the CLI exits EXIT_INTERRUPTED (75), resumable. A call that exhausts its retries ends its
chunk unfinished (exit 75 for the job), not the run.

Transient call failures are not BulkopsErrors: they are `CallFailed` subclasses raised by
the registry (or the engine's call timeout) and retried by the engine, which owns every
retry.

A task group that fails with several errors is settled by `first_error`: the first
bulkops error decides the exit code, and every other error is logged, none dropped.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_PERMANENT_FAILURES = 3
EXIT_INTERRUPTED = 75
EXIT_ACCESS_DENIED = 77


class BulkopsError(Exception):
    """Base of every error bulkops reports to its user."""

    exit_code = EXIT_UNEXPECTED


class NothingToDo(BulkopsError):
    """The manifest names nothing to do: no job starts, and that is success."""

    exit_code = EXIT_OK


class UsageError(BulkopsError):
    exit_code = EXIT_USAGE


class ManifestError(UsageError):
    """A manifest row failed validation; the message names file, line and field."""

    def __init__(self, path: str, line: int, field: str | None, reason: str) -> None:
        self.path, self.line, self.field, self.reason = path, line, field, reason
        where = f"{path}:{line}" + (f": field {field!r}" if field else "")
        super().__init__(f"{where}: {reason}")


class ManifestInvalid(ManifestError):
    """Several rows failed validation: `problems` holds the first ones, the message lists them."""

    def __init__(self, problems: list[ManifestError], invalid_rows: int) -> None:
        first = problems[0]
        super().__init__(first.path, first.line, first.field, first.reason)
        self.problems = tuple(problems)
        self.invalid_rows = invalid_rows
        lines = [f"{first.path}: {invalid_rows} invalid rows; fix them and run again:"]
        lines += [f"  {p}" for p in problems]
        if invalid_rows > len(problems):
            lines.append(f"  ... and {invalid_rows - len(problems)} more invalid rows")
        self.args = ("\n".join(lines),)


class Refused(UsageError):
    """A safety rail refused the job before any mutating call."""


class NotAJournal(UsageError):
    """The file given as a checkpoint is no bulkops journal (a manifest, a report, empty)."""

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is not a bulkops journal ({what}); pass the checkpoint a job printed "
            "when it started (`checkpoint: …`, by default bulkops-checkpoints/*.journal)"
        )


class ManifestChanged(UsageError):
    """The manifest no longer matches the hash recorded in the journal header."""


class JournalCorrupt(BulkopsError):
    """The journal is damaged at a place other than a torn last record."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"journal {path} is corrupt at line {line}: {reason}")


class Unreachable(BulkopsError):
    """CodeArtifact did not answer the check made before a job's first call: retryable."""

    exit_code = EXIT_INTERRUPTED


class JournalBusy(BulkopsError):
    """Another live bulkops run holds the journal's lock: nothing was sent, retry later."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, path: str, holder: str) -> None:
        self.path, self.holder = path, holder
        super().__init__(
            f"journal {path} is in use by another bulkops run ({holder}); nothing was sent. "
            f"Once that run has ended: bulkops resume {path}"
        )


class LeaseLost(BulkopsError):
    """The run lost the journal's lease (not renewed in time, or taken over): it stops sending."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(
            f"lost ownership of journal {path} ({reason}); the run stopped sending calls and "
            f"every record already stored is kept. Resume it: bulkops resume {path}"
        )


class StoreUnavailable(BulkopsError):
    """The checkpoint store did not answer after retries: stopped, every stored record is kept."""

    exit_code = EXIT_INTERRUPTED


class JournalFull(BulkopsError):
    """The journal's file system is full: the run stopped; every durable record is kept."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"no space left on the journal's file system ({path}); the run stopped and "
            f"every record already written is kept. Free space, then: bulkops resume {path}"
        )


class ChunkListCorrupt(BulkopsError):
    """A job's chunk list is missing, damaged, or not the one its journal was started with."""


class FatalCall(BulkopsError):
    """A call failure after which every later call would fail the same way."""


class AccessDenied(FatalCall):
    exit_code = EXIT_ACCESS_DENIED


class QuotaExceeded(FatalCall):
    pass


class RequestRejected(FatalCall):
    exit_code = EXIT_USAGE


class ResourceMissing(FatalCall):
    """ResourceNotFoundException: `resource_type` is the service's (package, repository...)."""

    exit_code = EXIT_USAGE

    def __init__(
        self, message: str, *, resource_type: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.resource_type, self.reason = resource_type, reason


class CallFailed(Exception):
    """A transient failure of one call; the engine retries it.

    `code` is the service's error code (e.g. InternalServerException) when there was an
    answer, else the failure's own name (e.g. NetworkError).
    """

    kind = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__


class Throttled(CallFailed):
    """HTTP 429: slow the quota scope down and retry, after `retry_after` seconds if given."""

    kind = "throttled"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, "ThrottlingException")
        self.retry_after = retry_after


class ServerError(CallFailed):
    """HTTP 5xx: retry with backoff."""

    kind = "server_error"


class Conflict(CallFailed):
    """HTTP 409: transient in practice; retry a few times, then report."""

    kind = "conflict"


class NetworkError(CallFailed):
    """The connection dropped or the answer did not arrive within the call timeout."""

    kind = "network"


class CallTimeout(CallFailed):
    """No answer within the call timeout."""

    kind = "timeout"


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """Every error a (nested) exception group holds, in the order its tasks raised them."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(leaves(exc))
        else:
            found.append(exc)
    return found


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to raise for a failed task group; every other error in it is logged.

    The first bulkops error decides (and so the exit code); without one, a lone error
    comes out as itself and several stay the group, whose traceback shows them all.
    """
    import structlog  # here, not at the top: `bulkops --help` imports this module, not logging

    errors = leaves(group)
    chosen: BaseException | None = next((e for e in errors if isinstance(e, BulkopsError)), None)
    if chosen is None:
        if len(errors) != 1:
            return group
        chosen = errors[0]
    for exc in errors:
        if exc is not chosen:
            structlog.get_logger("bulkops.errors").error(
                "error_also_raised",
                error=str(exc),
                error_type=type(exc).__name__,
                reported=type(chosen).__name__,
            )
    return chosen


# The exit codes above as the CLI's --help epilog: here so --help imports nothing heavy.
EXIT_CODES_HELP = """\b
Exit codes:
  0   everything succeeded or was already in the wanted state
  1   anything unexpected
  2   bad usage, input or configuration (nothing was sent)
  3   finished with permanent per-version failures (see `bulkops report`), or a
      safety rail (--breaker, --canary) stopped the job: resume it once decided
  75  interrupted or unfinished, resumable with `bulkops resume CHECKPOINT`
  77  access denied, or no usable AWS credentials"""
