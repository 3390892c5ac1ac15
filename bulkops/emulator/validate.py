"""Request validation compiled once per operation from botocore's CodeArtifact input shapes.

botocore checks little client-side (only minimums), so this is where a client bug shows:
every required member, enum, length, pattern and list size of the model is enforced, plus
the per-format namespace rules and the documented cross-field rules the model cannot say.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from bulkops.aws.shapes import constraint, service_model
from bulkops.emulator.wire import ApiError, validation_error
from bulkops.model import NAMESPACE_FORBIDDEN, NAMESPACE_REQUIRED, TARGET_STATUSES

# (value, field path) -> None, or raises ApiError(400) naming the field
Check = Callable[[Any, str], None]

MAX_VERSIONS = 100


def _invalid(path: str, why: str) -> ApiError:
    return validation_error(
        f"1 validation error detected: Value at '{path}' failed to satisfy constraint: Member {why}"
    )


def _string_check(shape_name: str) -> Check:
    c = constraint(shape_name)
    enum = frozenset(c.enum)
    low = c.min or 0
    high = c.max if c.max is not None else 1 << 62
    fullmatch = c.pattern.fullmatch if c.pattern is not None else None

    def check(value: Any, path: str) -> None:
        if type(value) is not str:
            raise _invalid(path, "must be a string")
        if enum:
            if value not in enum:
                raise _invalid(path, c.violation(value) or "must be a valid enum value")
            return
        if not low <= len(value) <= high or (fullmatch is not None and not fullmatch(value)):
            raise _invalid(path, c.violation(value) or "is invalid")

    return check


def _strings_check(shape_name: str, check: Check) -> Callable[[list[Any], str], None]:
    """The hot loop of every batch call (up to 100 version strings), kept inline."""
    c = constraint(shape_name)
    low = c.min or 0
    high = c.max if c.max is not None else 1 << 62
    fullmatch = c.pattern.fullmatch if c.pattern is not None else None
    if c.enum or fullmatch is None:

        def each(values: list[Any], path: str) -> None:
            for i, v in enumerate(values):
                check(v, f"{path}.{i + 1}.member")

        return each

    def strings(values: list[Any], path: str) -> None:
        for v in values:
            if type(v) is not str or not low <= len(v) <= high or not fullmatch(v):
                break
        else:
            return
        for i, v in enumerate(values):  # a bad one: find it again, for the message
            check(v, f"{path}.{i + 1}.member")

    return strings


def _compile(shape: Any) -> Check:
    """A checker for one shape of the model, walking lists, maps and structures."""
    kind = shape.type_name
    meta = shape.metadata
    low, high = meta.get("min"), meta.get("max")
    if kind == "string":
        return _string_check(shape.name)
    if kind == "integer":

        def check_int(value: Any, path: str) -> None:
            if type(value) is not int:
                raise _invalid(path, "must be an integer")
            if (low is not None and value < low) or (high is not None and value > high):
                raise _invalid(path, f"must be between {low} and {high} (got {value})")

        return check_int
    if kind == "boolean":

        def check_bool(value: Any, path: str) -> None:
            if type(value) is not bool:
                raise _invalid(path, "must be a boolean")

        return check_bool
    if kind == "list":
        item = _compile(shape.member)
        items = (
            _strings_check(shape.member.name, item) if shape.member.type_name == "string" else None
        )

        def check_list(value: Any, path: str) -> None:
            if type(value) is not list:
                raise _invalid(path, "must be a list")
            if high is not None and len(value) > high:
                raise _invalid(path, f"must have at most {high} items (got {len(value)})")
            if low is not None and len(value) < low:
                raise _invalid(path, f"must have at least {low} items (got {len(value)})")
            if items is not None:
                items(value, path)
                return
            for i, v in enumerate(value):
                item(v, f"{path}.{i + 1}.member")

        return check_list
    if kind == "map":
        key, val = _compile(shape.key), _compile(shape.value)

        def check_map(value: Any, path: str) -> None:
            if type(value) is not dict:
                raise _invalid(path, "must be a map")
            if high is not None and len(value) > high:
                raise _invalid(path, f"must have at most {high} entries (got {len(value)})")
            for k, v in value.items():
                key(k, f"{path}.key")
                val(v, f"{path}.{k}")

        return check_map
    if kind == "structure":
        members = {n: _compile(m) for n, m in shape.members.items()}
        required = tuple(shape.required_members)

        def check_struct(value: Any, path: str) -> None:
            if type(value) is not dict:
                raise _invalid(path, "must be an object")
            for name in required:
                if name not in value:
                    raise _invalid(f"{path}.{name}", "must not be null")
            for name, v in value.items():
                if name in members:
                    members[name](v, f"{path}.{name}")

        return check_struct
    return lambda value, path: None  # timestamps, blobs: none in the emulated inputs


@dataclass(frozen=True, slots=True)
class _QueryField:
    member: str
    wire: str
    required: bool
    integer: bool
    check: Check


@dataclass(frozen=True, slots=True)
class _BodyField:
    member: str
    required: bool
    check: Check


@dataclass(frozen=True, slots=True)
class OperationValidator:
    """Turns one request's query string and body into validated parameters (API names)."""

    operation: str
    query: tuple[_QueryField, ...]
    body: tuple[_BodyField, ...]
    cross_check: Callable[[dict[str, Any]], None]

    @property
    def has_body(self) -> bool:
        return bool(self.body)

    def __call__(self, query: Mapping[str, str], raw_body: bytes) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for f in self.query:
            value: Any = query.get(f.wire)
            if value is None:
                if f.required:
                    raise _invalid(f.member, "must not be null")
                continue
            if f.integer:
                try:
                    value = int(value)
                except ValueError:
                    raise _invalid(f.member, "must be an integer") from None
            f.check(value, f.member)
            params[f.member] = value
        if self.body:
            body = _parse_body(raw_body)
            for b in self.body:
                value = body.get(b.member)
                if value is None:
                    if b.required:
                        raise _invalid(b.member, "must not be null")
                    continue
                b.check(value, b.member)
                params[b.member] = value
        self.cross_check(params)
        return params


def _parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise validation_error("Request body is not valid JSON", "CANNOT_PARSE") from None
    if type(body) is not dict:
        raise validation_error("Request body must be a JSON object", "CANNOT_PARSE")
    return body


def _namespace_rule(params: dict[str, Any], *, filter_only: bool) -> None:
    fmt = params.get("format")
    has_namespace = "namespace" in params
    if fmt in NAMESPACE_FORBIDDEN and has_namespace:
        raise _invalid("namespace", f"must be absent for {fmt} packages, which have none")
    if fmt in NAMESPACE_REQUIRED and not has_namespace and not filter_only:
        raise _invalid("namespace", f"must not be null for {fmt} packages")


def _versions_rule(params: dict[str, Any]) -> None:
    named = set(params.get("versions", ())) | set(params.get("versionRevisions", ()))
    if len(named) > MAX_VERSIONS:
        why = f"and versions together must name at most {MAX_VERSIONS} versions"
        raise _invalid("versionRevisions", why)


def _extra_rules(operation: str) -> Callable[[dict[str, Any]], None]:
    def rules(params: dict[str, Any]) -> None:
        _namespace_rule(params, filter_only=operation == "ListPackages")
        if operation in ("DisposePackageVersions", "UpdatePackageVersionsStatus"):
            _versions_rule(params)
        if operation == "UpdatePackageVersionsStatus" and (
            params["targetStatus"] not in TARGET_STATUSES
        ):
            raise _invalid("targetStatus", f"must be one of {', '.join(TARGET_STATUSES)}")
        if operation == "CopyPackageVersions":
            if ("versions" in params) == ("versionRevisions" in params):
                raise validation_error(
                    "Specify exactly one of 'versions' and 'versionRevisions', not both or none"
                )
            _versions_rule(params)
            if params["sourceRepository"] == params["destinationRepository"]:
                raise _invalid("destinationRepository", "must differ from sourceRepository")

    return rules


@cache
def validator(operation: str) -> OperationValidator:
    """The compiled validator of one operation (built once per process)."""
    shape = service_model().operation_model(operation).input_shape
    required = set(shape.required_members)
    query: list[_QueryField] = []
    body: list[_BodyField] = []
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        if location == "querystring":
            wire = member.serialization.get("name", name)
            integer = member.type_name == "integer"
            query.append(_QueryField(name, wire, name in required, integer, _compile(member)))
        elif location is None:
            body.append(_BodyField(name, name in required, _compile(member)))
        else:  # headers or URI labels: none of the emulated operations has them
            raise NotImplementedError(f"{operation}.{name} travels in {location}")
    return OperationValidator(operation, tuple(query), tuple(body), _extra_rules(operation))
