"""Helpers shared by the emulator tests (imported by name: tests/emulator is on sys.path)."""

from __future__ import annotations

from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

from bulkops.model import PackageRef


def ref_args(ref: PackageRef) -> dict[str, str]:
    """format/namespace/package keywords for a botocore call (namespace omitted when None)."""
    out = {"format": ref.format, "package": ref.package}
    if ref.namespace is not None:
        out["namespace"] = ref.namespace
    return out


def where(repository: str = "main") -> dict[str, str]:
    """domain/repository keywords."""
    return {"domain": "acme", "repository": repository}


def client_for(endpoint_url: str, **config: Any) -> Any:
    """An aioboto3 CodeArtifact client that tries once unless told otherwise."""
    retries = config.pop("retries", {"total_max_attempts": 1})
    return aioboto3.Session().client(
        "codeartifact",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        config=AioConfig(retries=retries, **config),
    )
