"""The HTTP side of the emulator: routes from botocore's model, the request pipeline, admin paths.

One aiohttp low-level handler serves everything (no router, no middleware: speed matters).
A call goes: route → quota → validate → fault plan → latency → act → answer.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import Any

from aiohttp import web

from bulkops.aws.shapes import service_model
from bulkops.emulator.faults import FaultConfig, FaultInjector
from bulkops.emulator.operations import OPERATIONS, targets
from bulkops.emulator.quota import QuotaConfig, Quotas
from bulkops.emulator.snapshot import export_state, load_state
from bulkops.emulator.state import State
from bulkops.emulator.validate import validator
from bulkops.emulator.wire import (
    ApiError,
    conflict,
    internal_error,
    json_response,
    not_implemented,
    throttled,
    unknown_path,
)

ADMIN_PREFIX = "/_emulator/"  # AWS paths all start with /v1/, so this never collides


@cache
def routes() -> dict[tuple[str, str], str]:
    """(HTTP method, path) → operation name, for every operation of the service model."""
    model = service_model()
    table: dict[tuple[str, str], str] = {}
    for name in model.operation_names:
        http = model.operation_model(name).http
        table[(http["method"], http["requestUri"].split("?", 1)[0])] = name
    return table


class Emulator:
    """State, quotas, faults and counters of one emulated account, and its request handler."""

    def __init__(self, state: State, quotas: QuotaConfig, faults: FaultConfig) -> None:
        self.state = state
        self.quotas = Quotas(quotas)
        self.faults = FaultInjector(faults, state.seed)
        self._routes = routes()
        self._validators = {op: validator(op) for op in OPERATIONS}
        self._stopping = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: dict[str, int] = dict.fromkeys(OPERATIONS, 0)
        self.throttled: dict[str, int] = dict.fromkeys(OPERATIONS, 0)
        self.errors: dict[str, int] = {}

    # ---- the request pipeline ---------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one HTTP request as CodeArtifact would (or as the admin API)."""
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        try:
            path = request.path
            if path.startswith(ADMIN_PREFIX):
                return await self._admin(request, path[len(ADMIN_PREFIX) :])
            operation = self._routes.get((request.method, path))
            try:
                if operation is None:
                    raise unknown_path(request.method, path)
                self.calls[operation] = self.calls.get(operation, 0) + 1
                if operation not in OPERATIONS:
                    raise not_implemented(operation)
                return await self._call(operation, request)
            except ApiError as exc:
                self.errors[exc.code] = self.errors.get(exc.code, 0) + 1
                return exc.response()
        finally:
            self.in_flight -= 1

    async def _call(self, operation: str, request: web.BaseRequest) -> web.StreamResponse:
        check = self._validators[operation]
        body = await request.read() if check.has_body else b""
        # Throttling comes first and leaves everything else untouched.
        if (refusal := self.quotas.acquire(operation)) is not None:
            self.throttled[operation] += 1
            raise throttled(*refusal)
        params = check(request.query, body)
        plan = self.faults.plan(operation, len(targets(params)))
        if plan.delay > 0:
            await self._pause(plan.delay)
        kind = plan.kind
        if kind is not None:
            if kind == "error":
                raise internal_error()
            if kind == "conflict":
                raise conflict()
            if kind == "drop":
                return _dropped(request)
        result = OPERATIONS[operation](self.state, params, plan.skipped)
        if kind == "lost":
            return _dropped(request)
        if kind == "slow":
            await self._pause(self.faults.config.slow_seconds)
        return json_response(result)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but end early when the server stops (so shutdown never waits on a fault)."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass

    def stop(self) -> None:
        """Let pending slow answers and latencies finish now."""
        self._stopping.set()

    # ---- ground truth and settings ------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        """Calls, throttles, error answers and faults so far; versions per status now."""
        return {
            "calls": dict(self.calls),
            "throttled": dict(self.throttled),
            "errors": dict(self.errors),
            "faults": dict(self.faults.counts),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "versions_by_status": self.state.status_counts(),
        }

    def reset_counters(self) -> None:
        """Zero every counter (max_in_flight restarts from the requests in flight now)."""
        self.calls = dict.fromkeys(OPERATIONS, 0)
        self.throttled = dict.fromkeys(OPERATIONS, 0)
        self.errors = {}
        self.faults.reset_counts()
        self.max_in_flight = self.in_flight

    def config(self) -> dict[str, Any]:
        return {"quotas": self.quotas.config.to_dict(), "faults": self.faults.config.to_dict()}

    def apply_config(self, data: dict[str, Any]) -> None:
        """Merge `{"quotas": {...}, "faults": {...}}` over the running settings."""
        quotas = faults = None
        if "quotas" in data:
            if data["quotas"] in (None, "off"):
                quotas = QuotaConfig.off()
            else:
                quotas = QuotaConfig.from_dict(data["quotas"], self.quotas.config)
        if "faults" in data:
            faults = FaultConfig.from_dict(data["faults"] or {}, self.faults.config)
        # Parse both before applying either, so a bad request changes nothing.
        if quotas is not None:
            self.quotas.configure(quotas)
        if faults is not None:
            self.faults.configure(faults)

    # ---- admin HTTP ---------------------------------------------------------------------

    async def _admin(self, request: web.BaseRequest, name: str) -> web.StreamResponse:
        method = request.method
        try:
            if name == "state" and method == "GET":
                return json_response(export_state(self.state))
            if name == "state" and method == "POST":
                data = json.loads(await request.read())
                self.state = load_state(data, self.state.seed, self.state.account_id)
                return json_response({"loaded": True})
            if name == "counters" and method == "GET":
                return json_response(self.counters())
            if name == "reset-counters" and method == "POST":
                self.reset_counters()
                return json_response(self.counters())
            if name == "config" and method == "GET":
                return json_response(self.config())
            if name == "config" and method == "POST":
                self.apply_config(json.loads(await request.read() or b"{}"))
                return json_response(self.config())
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return json_response({"message": f"bad admin request: {exc}"}, status=400)
        return json_response({"message": f"no admin path {method} /_emulator/{name}"}, 404)


def _dropped(request: web.BaseRequest) -> web.StreamResponse:
    """Close the connection without an answer; aiohttp then drops the response quietly."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)
