"""The emulator's side of CodeArtifact's rest-json wire: API errors and JSON responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

JSON_TYPE = "application/json"
# ASCII escapes: the C encoder's fastest path, and equally valid JSON for botocore.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class ApiError(Exception):
    """An error answer of the service: HTTP status, `x-amzn-ErrorType` and modeled fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The error as botocore's rest-json parser expects it."""
        body = {"message": self.message, **self.fields}
        headers = {"x-amzn-ErrorType": self.code, "Content-Type": JSON_TYPE, **self.headers}
        return web.Response(status=self.status, body=_ENCODE(body).encode(), headers=headers)


def validation_error(message: str, reason: str = "FIELD_VALIDATION_FAILED") -> ApiError:
    """400 ValidationException: the request is wrong and must not be retried."""
    return ApiError(400, "ValidationException", message, fields={"reason": reason})


def not_found(resource_type: str, resource_id: str, message: str) -> ApiError:
    """404 ResourceNotFoundException naming the missing resource."""
    return ApiError(
        404,
        "ResourceNotFoundException",
        message,
        fields={"resourceType": resource_type, "resourceId": resource_id},
    )


def throttled(retry_after: int, scope: str) -> ApiError:
    """429 ThrottlingException; `Retry-After` is modeled as `retryAfterSeconds`."""
    return ApiError(
        429,
        "ThrottlingException",
        f"Rate exceeded: the {scope} quota of the emulated account is used up",
        headers={"Retry-After": str(retry_after)},
    )


def internal_error() -> ApiError:
    return ApiError(500, "InternalServerException", "Injected internal server error")


def conflict() -> ApiError:
    return ApiError(409, "ConflictException", "Injected conflict: try again")


def not_implemented(operation: str) -> ApiError:
    # 501 is neither modeled nor retried by botocore, so the caller sees it at once.
    return ApiError(
        501,
        "NotImplementedException",
        f"{operation} is a CodeArtifact operation not implemented by the emulator",
    )


def unknown_path(method: str, path: str) -> ApiError:
    return ApiError(
        404,
        "UnknownOperationException",
        f"No CodeArtifact operation is routed at {method} {path}",
    )


def json_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    """A 200 rest-json answer."""
    return web.Response(
        status=status, body=_ENCODE(payload).encode(), headers={"Content-Type": JSON_TYPE}
    )
