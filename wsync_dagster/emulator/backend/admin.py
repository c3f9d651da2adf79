"""The admin side of the state: injected faults, the request log and the record limits."""

from typing import Any

from wsync_dagster.emulator.backend.store import Store
from wsync_dagster.emulator.errors import ApiError, bad_request
from wsync_dagster.emulator.faults import Faults
from wsync_dagster.emulator.limits import SCHEDULE_INTERVALS


class Admin:
    """What ``/_emulator/`` reads and changes, and the faults each API call may consume."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def reset(self) -> None:
        self._store.reset()

    def clock_json(self) -> dict[str, Any]:
        return self._store.clock_json()

    def is_warehouse_down(self) -> bool:
        return self._store.faults.warehouse_unreachable

    # faults

    async def hold(self, method: str, path: str) -> None:
        """Wait here while a ``hold`` fault gathers the concurrent calls it matches."""
        await self._store.faults.hold.meet(method, path)

    async def delay(self, method: str, path: str) -> None:
        """Wait the ``latency`` fault's round trip, if it matches this call."""
        await self._store.faults.latency.wait(method, path)

    def update_faults(self, body: Any) -> dict[str, Any]:
        with self._store.lock:
            self._store.faults.update(body)
            return self._store.faults.to_json()

    def clear_faults(self) -> dict[str, Any]:
        with self._store.lock:
            self._store.faults = Faults()
            return self._store.faults.to_json()

    def faults_json(self) -> dict[str, Any]:
        with self._store.lock:
            return self._store.faults.to_json()

    def take_request_fault(self, method: str, path: str) -> ApiError | None:
        """The injected 429/5xx for this API call, if one is armed (uses it up)."""
        with self._store.lock:
            faults = self._store.faults
            if faults.throttle.take(method, path):
                return ApiError(
                    429,
                    "Too many requests (injected by the emulator).",
                    headers={"Retry-After": str(faults.throttle.retry_after)},
                )
            if faults.server_error.take(method, path):
                status = faults.server_error.status
                return ApiError(status, f"Server error {status} (injected by the emulator).")
            return None

    def take_token_delay(self) -> float:
        with self._store.lock:
            return self._store.faults.take_token_delay()

    def take_dropped_trigger(self) -> bool:
        with self._store.lock:
            faults = self._store.faults
            if faults.dropped_triggers > 0:
                faults.dropped_triggers -= 1
                return True
            return False

    # record limits

    def set_record_limits(self, body: Any) -> dict[str, int]:
        if not isinstance(body, dict) or not body:
            raise bad_request("Send a JSON object of schedule_interval -> record limit.")
        problems = [
            f"{name}: expected one of {', '.join(SCHEDULE_INTERVALS)} and a positive integer."
            for name, value in body.items()
            if name not in SCHEDULE_INTERVALS
            or not isinstance(value, int)
            or isinstance(value, bool)
            or value < 1
        ]
        if problems:
            raise bad_request(*problems)
        with self._store.lock:
            self._store.record_limits.update(body)
            return dict(self._store.record_limits)

    def limits_json(self) -> dict[str, int]:
        with self._store.lock:
            return dict(self._store.record_limits)

    # request log

    def record_request(self, method: str, path: str, status: int | None, authorized: bool) -> None:
        with self._store.lock:
            self._store.log.append(
                {"method": method, "path": path, "status": status, "authorized": authorized}
            )

    def request_log(self) -> list[dict[str, Any]]:
        with self._store.lock:
            return list(self._store.log)

    def clear_request_log(self) -> None:
        with self._store.lock:
            self._store.log.clear()

    def activity_json(self) -> dict[str, Any]:
        with self._store.lock:
            return self._store.activity.to_json()

    def all_profiles(self) -> list[dict[str, Any]]:
        with self._store.lock:
            return [profile.to_json() for profile in self._store.profiles]
