"""Switchable failures for tests and demos, set through ``POST /_emulator/faults``.

Counted faults are used up one call at a time; none of them applies to ``/_emulator/`` itself.
"""

import asyncio
import dataclasses
import re
from collections import deque
from typing import Any

from wsync_dagster.emulator.errors import bad_request


@dataclasses.dataclass
class RequestFault:
    """Answer the next ``count`` matching API calls with ``status`` (429 adds ``Retry-After``)."""

    count: int = 0
    status: int = 500
    retry_after: int = 1
    method: str | None = None
    path: str | None = None

    def take(self, method: str, path: str) -> bool:
        if self.count <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        self.count -= 1
        return True


@dataclasses.dataclass
class RequestHold:
    """Hold the next ``count`` matching API calls until all of them have arrived, then let them all
    proceed: concurrent clients meet at that call, which makes a race between them repeatable. A
    held call proceeds anyway after ``seconds``, so a missing client never hangs the others (calls
    already held when the faults are cleared or replaced also wait out their ``seconds``)."""

    calls: RequestFault = dataclasses.field(default_factory=RequestFault)
    seconds: float = 30.0
    waiting: int = 0
    _all_arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def meet(self, method: str, path: str) -> None:
        """Called on the server's event loop for every API call; returns at once unless held."""
        if not self.calls.take(method, path):
            return
        if self.calls.count == 0:
            self._all_arrived.set()
        self.waiting += 1
        try:
            await asyncio.wait_for(self._all_arrived.wait(), self.seconds)
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1

    def to_json(self) -> dict[str, Any]:
        calls = self.calls
        return {"count": calls.count, "seconds": self.seconds, "method": calls.method,
                "path": calls.path, "waiting": self.waiting}  # fmt: skip


@dataclasses.dataclass
class Latency:
    """Every matching API call waits ``seconds`` before it is answered, until cleared: a real
    service's round trip, so that benchmarks see what many calls cost when each takes time. Calls
    wait concurrently, as they would on a real server."""

    seconds: float = 0.0
    method: str | None = None
    path: str | None = None

    def of(self, method: str, path: str) -> float:
        if self.seconds <= 0:
            return 0.0
        if self.method is not None and self.method.upper() != method.upper():
            return 0.0
        if self.path is not None and not re.search(self.path, path):
            return 0.0
        return self.seconds

    async def wait(self, method: str, path: str) -> None:
        if seconds := self.of(method, path):
            await asyncio.sleep(seconds)


@dataclasses.dataclass
class Faults:
    """Every fault the emulator can inject; the default instance injects none."""

    throttle: RequestFault = dataclasses.field(default_factory=lambda: RequestFault(status=429))
    server_error: RequestFault = dataclasses.field(default_factory=RequestFault)
    hold: RequestHold = dataclasses.field(default_factory=RequestHold)
    latency: Latency = dataclasses.field(default_factory=Latency)
    token_delay_seconds: float = 0.0
    token_delay_count: int | None = None  # None: every token call is slow until cleared
    token_failures: int = 0
    warehouse_unreachable: bool = False
    run_failures: deque[tuple[str | None, str]] = dataclasses.field(default_factory=deque)
    dropped_triggers: int = 0
    unknown_state_reads: int = 0
    unknown_state: str = "unknown_state"

    def take_token_delay(self) -> float:
        if self.token_delay_seconds <= 0 or self.token_delay_count == 0:
            return 0.0
        if self.token_delay_count is not None:
            self.token_delay_count -= 1
        return self.token_delay_seconds

    def take_run_failure(self, pipeline_id: str) -> str | None:
        """The reason to fail this pipeline's next run with, if one is queued for it (or for any)."""
        for index, (target, reason) in enumerate(self.run_failures):
            if target is None or target == pipeline_id:
                del self.run_failures[index]
                return reason
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "throttle": dataclasses.asdict(self.throttle),
            "server_error": dataclasses.asdict(self.server_error),
            "hold": self.hold.to_json(),
            "latency": dataclasses.asdict(self.latency),
            "token_delay": {"seconds": self.token_delay_seconds, "count": self.token_delay_count},
            "token_failure": {"count": self.token_failures},
            "warehouse_unreachable": self.warehouse_unreachable,
            "run_failures": [{"pipeline_id": p, "reason": r} for p, r in self.run_failures],
            "drop_trigger_response": {"count": self.dropped_triggers},
            "unknown_run_state": {"count": self.unknown_state_reads, "state": self.unknown_state},
        }

    def update(self, body: Any) -> None:
        """Apply ``POST /_emulator/faults``: each key given replaces that fault (see app.py)."""
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        unknown = sorted(set(body) - set(_SETTERS))
        if unknown:
            raise bad_request(
                f"Unknown fault(s): {', '.join(unknown)}; known: {', '.join(_SETTERS)}."
            )
        for key, value in body.items():
            _SETTERS[key](self, _options(key, value))


def _options(key: str, value: Any) -> dict[str, Any]:
    if key == "warehouse_unreachable":
        if not isinstance(value, bool):
            raise bad_request("warehouse_unreachable must be true or false.")
        return {"on": value}
    if not isinstance(value, dict):
        raise bad_request(f"{key} must be a JSON object.")
    allowed = _OPTIONS[key]
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise bad_request(f"Unknown option(s) of {key}: {', '.join(unknown)}.")
    for name, types in allowed.items():
        if name in value and not (
            isinstance(value[name], types) and not isinstance(value[name], bool)
        ):
            raise bad_request(f"{key}.{name} has the wrong type.")
        if name in ("count", "seconds", "retry_after") and (value.get(name) or 0) < 0:
            raise bad_request(f"{key}.{name} must not be negative.")
    if "path" in value and value["path"] is not None:
        try:
            re.compile(value["path"])
        except re.error as error:
            raise bad_request(f"{key}.path is not a valid regular expression: {error}.") from None
    return value


_COUNT = {"count": int}
_MATCH = {"method": (str, type(None)), "path": (str, type(None))}
_OPTIONS: dict[str, dict[str, Any]] = {
    "throttle": {**_COUNT, "retry_after": int, **_MATCH},
    "server_error": {**_COUNT, "status": int, **_MATCH},
    "hold": {**_COUNT, "seconds": (int, float), **_MATCH},
    "latency": {"seconds": (int, float), **_MATCH},
    "token_delay": {"seconds": (int, float), "count": (int, type(None))},
    "token_failure": _COUNT,
    "run_failure": {"reason": str, "pipeline_id": (str, type(None))},
    "drop_trigger_response": _COUNT,
    "unknown_run_state": {**_COUNT, "state": str},
}


def _set_throttle(faults: Faults, o: dict[str, Any]) -> None:
    faults.throttle = RequestFault(
        o.get("count", 1), 429, o.get("retry_after", 1), o.get("method"), o.get("path")
    )


def _set_server_error(faults: Faults, o: dict[str, Any]) -> None:
    status = o.get("status", 500)
    if not 500 <= status <= 599:
        raise bad_request("server_error.status must be a 5xx status.")
    faults.server_error = RequestFault(o.get("count", 1), status, 1, o.get("method"), o.get("path"))


def _set_hold(faults: Faults, o: dict[str, Any]) -> None:
    calls = RequestFault(o.get("count", 1), 0, 0, o.get("method"), o.get("path"))
    faults.hold = RequestHold(calls, float(o.get("seconds", 30.0)))


def _set_latency(faults: Faults, o: dict[str, Any]) -> None:
    faults.latency = Latency(float(o.get("seconds", 0.0)), o.get("method"), o.get("path"))


def _set_token_delay(faults: Faults, o: dict[str, Any]) -> None:
    faults.token_delay_seconds = float(o.get("seconds", 0.0))
    faults.token_delay_count = o.get("count")


def _set_token_failure(faults: Faults, o: dict[str, Any]) -> None:
    faults.token_failures = o.get("count", 1)


def _set_warehouse_unreachable(faults: Faults, o: dict[str, Any]) -> None:
    faults.warehouse_unreachable = o["on"]


def _add_run_failure(faults: Faults, o: dict[str, Any]) -> None:
    faults.run_failures.append((o.get("pipeline_id"), o.get("reason", "Injected run failure.")))


def _set_dropped_triggers(faults: Faults, o: dict[str, Any]) -> None:
    faults.dropped_triggers = o.get("count", 1)


def _set_unknown_state(faults: Faults, o: dict[str, Any]) -> None:
    faults.unknown_state_reads = o.get("count", 1)
    faults.unknown_state = o.get("state", "unknown_state")


_SETTERS = {
    "throttle": _set_throttle,
    "server_error": _set_server_error,
    "hold": _set_hold,
    "latency": _set_latency,
    "token_delay": _set_token_delay,
    "token_failure": _set_token_failure,
    "warehouse_unreachable": _set_warehouse_unreachable,
    "run_failure": _add_run_failure,
    "drop_trigger_response": _set_dropped_triggers,
    "unknown_run_state": _set_unknown_state,
}
