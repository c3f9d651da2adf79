"""``EmulatorControl``: the admin API (``/_emulator/``) from Python, for tests and the demo."""

from datetime import datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

ADMIN_TIMEOUT = 600.0  # settling a long catch-up executes many runs
# A kept-alive connection the server closes just as a request goes out is reset: reads (GET) are
# sent again on a new connection; writes (POST, e.g. advancing the clock) never are.
READ_RETRIES = Retry(
    total=2, allowed_methods=frozenset({"GET"}), status_forcelist=(), backoff_factor=0
)


class EmulatorControl:
    """Drive an emulator at ``base_url``: its clock, faults, request log, profiles and limits."""

    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=READ_RETRIES))
        self._session = session

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}/_emulator/{path}",
            json=body,
            timeout=ADMIN_TIMEOUT,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    # clock

    def clock(self) -> datetime:
        """The emulator's current time."""
        return datetime.fromisoformat(self._call("GET", "clock")["now"])

    def set_clock(self, when: datetime, settle: bool = True) -> dict[str, Any]:
        """Move the clock to ``when`` (aware), running whatever falls due unless ``settle=False``."""
        return self._call("POST", "clock", {"now": when.isoformat(), "settle": settle})

    def advance(self, seconds: float, settle: bool = True) -> dict[str, Any]:
        """Move the clock forward, running whatever falls due unless ``settle=False``."""
        return self._call("POST", "clock", {"advance_seconds": seconds, "settle": settle})

    def settle(self) -> dict[str, Any]:
        """Create every due run and execute every runnable run, now."""
        return self._call("POST", "settle")

    def reset(self) -> None:
        """Forget all state (resources, runs, profiles, tokens, faults, log, limits, clock)."""
        self._call("POST", "reset")

    def config(self) -> dict[str, Any]:
        """Workspace, org and account ids, client id, clock mode, run duration and limits."""
        return self._call("GET", "config")

    # faults

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Set faults by their admin names, e.g. ``set_faults(throttle={"count": 2})``."""
        return self._call("POST", "faults", faults)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "faults")

    def throttle(
        self, count: int, retry_after: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """Answer the next ``count`` API calls (optionally only matching ones) with 429."""
        self.set_faults(
            throttle={"count": count, "retry_after": retry_after, "method": method, "path": path}
        )

    def fail_requests(
        self, count: int, status: int = 500, method: str | None = None, path: str | None = None
    ) -> None:
        """Answer the next ``count`` API calls (optionally only matching ones) with a 5xx."""
        self.set_faults(
            server_error={"count": count, "status": status, "method": method, "path": path}
        )

    def set_latency(
        self, seconds: float, method: str | None = None, path: str | None = None
    ) -> None:
        """Every API call (optionally only matching ones) waits ``seconds`` before its answer."""
        self.set_faults(latency={"seconds": seconds, "method": method, "path": path})

    def slow_token(self, seconds: float, count: int | None = None) -> None:
        """Delay token responses by ``seconds`` (the next ``count`` ones, or all until cleared)."""
        self.set_faults(token_delay={"seconds": seconds, "count": count})

    def fail_token(self, count: int = 1) -> None:
        """Answer the next ``count`` token requests with 500."""
        self.set_faults(token_failure={"count": count})

    def set_warehouse_unreachable(self, unreachable: bool = True) -> None:
        self.set_faults(warehouse_unreachable=unreachable)

    def fail_next_run(self, reason: str, pipeline_id: str | None = None) -> None:
        """Make the next run (of ``pipeline_id``, or of any pipeline) fail with ``reason``."""
        self.set_faults(run_failure={"reason": reason, "pipeline_id": pipeline_id})

    def drop_next_trigger_response(self, count: int = 1) -> None:
        """The next ``count`` triggers create their run, then close the connection unanswered."""
        self.set_faults(drop_trigger_response={"count": count})

    def unknown_run_states(self, count: int, state: str = "unknown_state") -> None:
        """The next ``count`` run objects served carry ``pipeline_run_state: state``."""
        self.set_faults(unknown_run_state={"count": count, "state": state})

    # observation

    def request_log(self) -> list[dict[str, Any]]:
        """``{method, path, status, authorized}`` of every API and token request so far."""
        return self._call("GET", "requests")

    def clear_request_log(self) -> None:
        self._call("DELETE", "requests")

    def profiles(self) -> list[dict[str, Any]]:
        """Every stored profile, with all fields."""
        return self._call("GET", "profiles")

    def activity(self) -> dict[str, Any]:
        """When each pipeline became active and paused: ``events``, ``active``, ``peak_active``."""
        return self._call("GET", "activity")

    def record_limits(self) -> dict[str, int]:
        return self._call("GET", "limits")

    def set_record_limits(self, **limits: int) -> dict[str, int]:
        """Override records-per-run limits, e.g. ``set_record_limits(hourly=10)``."""
        return self._call("POST", "limits", limits)
