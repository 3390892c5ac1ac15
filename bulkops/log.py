"""structlog setup: readable lines on a terminal, JSON lines elsewhere; secrets never leave.

botocore's and aiohttp's own `logging` records go through the same processors, so a
signature or credential that a library logs at debug level is redacted like ours.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

LogFormat = Literal["auto", "console", "json"]

_rendering: dict[str, str] = {}  # the format `configure` chose: "console" or "json"

_SECRET_KEYS = re.compile(
    r"(secret|token|password|credential|signature|authorization|access_key|accesskey|x-amz-security)",
    re.IGNORECASE,
)
# Authorization headers, SigV4 signatures and credential scopes as they appear inside strings.
_SECRET_TEXT = [
    (re.compile(r"(AWS4-HMAC-SHA256\s+)?Credential=[^,\s'\"]+"), "Credential=[redacted]"),
    (re.compile(r"Signature=[0-9a-fA-F]+"), "Signature=[redacted]"),
    (re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+"), r"\1[redacted]"),
    (re.compile(r"(?i)('authorization'\s*:\s*)b?'[^']*'"), r"\1'[redacted]'"),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "[redacted-key-id]"),
]


def redact_text(text: str) -> str:
    """The text with AWS credentials, signatures and session tokens masked."""
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key):
            event[key] = "[redacted]"
        elif isinstance(value, str):
            event[key] = redact_text(value)
    return event


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is now, so a live progress display can redirect it."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def configure(
    *,
    level: str = "info",
    fmt: LogFormat = "auto",
    stream: TextIO | None = None,
    context: dict[str, Any] | None = None,
) -> None:
    """Set up structlog and stdlib logging once for the process, writing to `stream` (stderr)."""
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    _rendering["format"] = fmt
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # a traceback becomes the `exception` string first, so that it is redacted too
        structlog.processors.format_exc_info,
        _redact,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    handler: logging.Handler = logging.StreamHandler(out) if stream else _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # botocore's info lines (where it found credentials) are noise; its debug goes through
    # the redaction above when asked for with --log-level debug.
    quiet = numeric if numeric <= logging.DEBUG else logging.WARNING
    for name in ("botocore", "aiobotocore", "aioboto3", "aiohttp"):
        logging.getLogger(name).setLevel(quiet)
    structlog.contextvars.clear_contextvars()
    if context:
        structlog.contextvars.bind_contextvars(**context)


def rendering() -> str | None:
    """The format logs are written in, "console" or "json"; None before `configure`."""
    return _rendering.get("format")
