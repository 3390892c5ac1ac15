"""TOML files validated by a pydantic model; every error names the file, the key and the reason."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from bulkops.errors import UsageError

M = TypeVar("M", bound=BaseModel)


def read_toml(path: Path, what: str) -> dict[str, object]:
    """The file's TOML document; UsageError naming `what` (e.g. "config") and the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read: {exc.strerror}") from None


def key_of(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the key a person wrote: `select[0].older_than`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(key, reason) for each error, in the words a TOML file's author needs."""
    found = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not str(p).startswith(("function-", "list[")))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] in ("literal_error", "enum"):
            message += f" (got {err['input']!r})"
        found.append((key_of(loc), message))
    return found


def load_model(path: Path, model: type[M], what: str) -> M:
    """The file validated as `model`; one UsageError listing every problem."""
    data = read_toml(path, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{what} {path}: key {key!r}: {reason}" for key, reason in problems(exc)]
        raise UsageError("\n".join(lines)) from None
