"""structlog setup: readable lines on a terminal, JSON lines elsewhere; secrets never leave.

botocore's and aiohttp's own `logging` records go through the same processors, so a
signature or credential that a library logs at debug level is redacted like ours.
Masking starts from the secrets themselves: `register_secret` records a credential's
value once it is resolved, and `redact_text` masks every form of it (plain, bytes repr,
URL-encoded, JSON-escaped) in every rendered line, printed error and written message.
The patterns below are a second net for values bulkops never saw.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
import urllib.parse
from types import TracebackType
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

LogFormat = Literal["auto", "console", "json"]

_rendering: dict[str, str] = {}  # the format `configure` chose: "console" or "json"

_SECRET_KEYS = re.compile(
    r"(secret|token|password|credential|signature|authorization|access_key|accesskey|x-amz-security)",
    re.IGNORECASE,
)
# A header or field value as botocore prints it: str or bytes repr, quoted (maybe JSON-escaped)
# or bare; the quotes are kept so that a masked JSON line stays valid JSON.
_VALUE = r"""(?P<v>b?(?P<q>\\?['"])(?:(?!(?P=q)).)*(?P=q)|[^'",\s}&<\\]+)"""
_NAMES = r"(?:x-amz-security-token|authorization|aws_secret_access_key|aws_session_token)"
_FIELDS = r"(?:SecretAccessKey|SessionToken|Token|AccessKeyId)"


def _mask_value(match: re.Match[str]) -> str:
    quote = match.group("q") or ""
    return f"{match.group('k')}{quote}[redacted]{quote}"


# Authorization headers, SigV4 signatures, credential scopes, STS and container-metadata
# credential fields, and passwords in URLs, as they appear inside strings.
_SECRET_TEXT: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"(AWS4-HMAC-SHA256\s+)?Credential=[^,\s'\"\\]+"), "Credential=[redacted]"),
    (re.compile(r"Signature=[0-9a-fA-F]+"), "Signature=[redacted]"),
    (re.compile(rf"(?i)(?P<k>\\?['\"]?{_NAMES}\\?['\"]?\s*[:=]\s*){_VALUE}"), _mask_value),
    (re.compile(rf"(?P<k>\\?['\"]{_FIELDS}\\?['\"]\s*:\s*){_VALUE}"), _mask_value),
    (re.compile(rf"(<{_FIELDS}>)[^<]*(</{_FIELDS}>)"), r"\1[redacted]\2"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]*:[^/\s@'\"]*@"), r"\1[redacted]@"),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "[redacted-key-id]"),
]

# Shorter values would mask ordinary words; AWS key ids are at least 16 characters.
_MIN_SECRET = 16
_lock = threading.Lock()
_registered: set[str] = set()
_by_value: re.Pattern[str] | None = None


def _forms(value: str) -> set[str]:
    """The ways botocore, aiohttp or a JSON encoder may print `value`."""
    json_escaped = json.dumps(value)[1:-1]
    return {
        value,
        repr(value)[1:-1],
        repr(value.encode())[2:-1],
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value, safe=""),
        urllib.parse.quote(value),
        json_escaped,
        json_escaped.replace("/", "\\/"),
        json.dumps(json_escaped)[1:-1],  # JSON inside JSON: a rendered line of an event
    }


def register_secret(value: str | None) -> None:
    """Mask `value` (a key id, secret key, session token or password) wherever it appears."""
    global _by_value
    if not value or len(value) < _MIN_SECRET:
        return
    with _lock:
        if value in _registered:
            return
        _registered.add(value)
        forms = {form for secret in _registered for form in _forms(secret)}
        # longest first, so a form that contains another is masked whole
        ordered = sorted(forms, key=len, reverse=True)
        _by_value = re.compile("|".join(map(re.escape, ordered)))


def register_url_password(url: str | None) -> None:
    """Register the password of a URL such as `http://user:pass@host`, as written and decoded."""
    if not url:
        return
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        register_secret(parts.password)
        register_secret(urllib.parse.unquote(parts.password))


def redact_text(text: str) -> str:
    """The text with every registered secret and every AWS credential pattern masked."""
    pattern = _by_value
    if pattern is not None:
        text = pattern.sub("[redacted]", text)
    for rule, replacement in _SECRET_TEXT:
        text = rule.sub(replacement, text)
    return text


def redact_error(exc: BaseException) -> str:
    """An exception's message as it may be printed or stored: masked."""
    return redact_text(str(exc))


def _redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key):
            event[key] = "[redacted]"
        elif isinstance(value, str):
            event[key] = redact_text(value)
    return event


class _Redacting:
    """A renderer whose every finished line is masked: values of any type, tracebacks, JSON."""

    def __init__(self, renderer: Any) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> str:
        return redact_text(str(self._renderer(logger, name, event)))


# botocore's debug records that dump whole request dicts, header maps, bodies, canonical
# requests or every event hook: dropped; "Making request" is summarised to its operation.
_DROPPED = (
    ("botocore.auth", ""),
    ("botocore.hooks", ""),
    ("aiobotocore.hooks", ""),
    ("botocore.parsers", "Response headers"),
    ("botocore.parsers", "Response body"),
    ("aiobotocore.parsers", "Response headers"),
    ("aiobotocore.parsers", "Response body"),
    ("botocore.endpoint", "Sending http request"),
    ("aiobotocore.endpoint", "Sending http request"),
)


class _LogLess(logging.Filter):
    """Keeps what a user debugging a job needs of botocore's debug output, and no header map."""

    def filter(self, record: logging.LogRecord) -> bool:
        name, msg = record.name, str(record.msg)
        for logger, prefix in _DROPPED:
            if (name == logger or name.startswith(logger + ".")) and msg.startswith(prefix):
                return False
        if msg.startswith("Making request for %s with params") and isinstance(record.args, tuple):
            operation, params = (*record.args, None, None)[:2]
            url = params.get("url") if isinstance(params, dict) else None
            record.msg, record.args = "Making request for %s to %s", (operation, url)
        return True


def _print_uncaught(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(kind, exc, tb))
    sys.stderr.write(redact_text(text))


def _print_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is not SystemExit and args.exc_value is not None:
        _print_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


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
    handler.addFilter(_LogLess())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=_Redacting(renderer),
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # botocore's info lines (where it found credentials) are noise; its debug goes through
    # _LogLess and the redaction above when asked for with --log-level debug.
    quiet = numeric if numeric <= logging.DEBUG else logging.WARNING
    for name in ("botocore", "aiobotocore", "aioboto3", "aiohttp"):
        logging.getLogger(name).setLevel(quiet)
    # a traceback that escapes every handler is printed masked too
    sys.excepthook = _print_uncaught
    threading.excepthook = _print_uncaught_in_thread
    structlog.contextvars.clear_contextvars()
    if context:
        structlog.contextvars.bind_contextvars(**context)


def rendering() -> str | None:
    """The format logs are written in, "console" or "json"; None before `configure`."""
    return _rendering.get("format")
