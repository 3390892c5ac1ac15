"""CodeArtifact's shape constraints (lengths, patterns, enums), from botocore's service model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.loaders
import botocore.model

SERVICE = "codeartifact"


@cache
def service_model() -> Any:
    """botocore's CodeArtifact service model: the wire contract, loaded once.

    Read with botocore's loader alone, not a session: a session reads the AWS config, and
    an unknown AWS_PROFILE would fail a plan that needs no AWS at all.
    """
    loader = botocore.loaders.create_loader()
    return botocore.model.ServiceModel(loader.load_service_model(SERVICE, "service-2"), SERVICE)


@dataclass(frozen=True, slots=True)
class Constraint:
    """What one string shape allows."""

    shape: str
    min: int | None
    max: int | None
    pattern: re.Pattern[str] | None
    enum: tuple[str, ...]

    def violation(self, value: str) -> str | None:
        """Why `value` breaks this constraint, or None if it is valid."""
        if self.enum and value not in self.enum:
            return f"must be one of {', '.join(self.enum)} (got {value!r})"
        if self.min is not None and len(value) < self.min:
            return f"must be at least {self.min} characters (got {len(value)})"
        if self.max is not None and len(value) > self.max:
            return f"must be at most {self.max} characters (got {len(value)})"
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return f"must match {self.pattern.pattern} (got {value!r})"
        return None


@cache
def constraint(shape_name: str) -> Constraint:
    """The constraint of a named shape, e.g. `PackageName`, `DomainName`, `PackageFormat`."""
    shape = service_model().shape_for(shape_name)
    meta = shape.metadata
    pattern = meta.get("pattern")
    return Constraint(
        shape=shape_name,
        min=meta.get("min"),
        max=meta.get("max"),
        pattern=re.compile(pattern) if pattern else None,
        enum=tuple(getattr(shape, "enum", None) or ()),
    )


def violation(shape_name: str, value: str) -> str | None:
    """Why `value` is not a valid `shape_name`, or None."""
    return constraint(shape_name).violation(value)
