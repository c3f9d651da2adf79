"""Typed client for mParticle's experimental Warehouse Sync API and the Profile API (no Dagster).

Example::

    from wsync_dagster.mparticle import ClientCredentials, WarehouseSyncClient

    credentials = ClientCredentials(client_id="...", client_secret="...")
    with WarehouseSyncClient(credentials, workspace_id=5328) as client:
        result = client.trigger_pipeline("orders-pipeline")
        run = client.wait_for_run("orders-pipeline", result.pipeline_run_id, timeout=1800)
"""

from wsync_dagster.mparticle.auth import ClientCredentials, clear_token_cache
from wsync_dagster.mparticle.base import MAX_PAGE_SIZE
from wsync_dagster.mparticle.client import ClientStats, WarehouseSyncClient
from wsync_dagster.mparticle.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    RunFailedError,
    ServerError,
    TransportError,
    UnknownRunStateError,
    WaitTimeoutError,
    WarehouseSyncError,
    WarehouseSyncTimeoutError,
    WarehouseUnreachableError,
)
from wsync_dagster.mparticle.models import (
    AudienceMembership,
    Connection,
    DataModel,
    Identity,
    Pipeline,
    PipelineRun,
    PipelineStatus,
    Profile,
    TriggerResult,
)
from wsync_dagster.mparticle.retries import RetryPolicy
from wsync_dagster.mparticle.wire import (
    MASKED_SECRET,
    ConnectionType,
    DataModelType,
    Environment,
    IdentityType,
    LoadTimestampType,
    ProfileField,
    RunState,
    RunType,
    ScheduleInterval,
)

__all__ = [
    "MASKED_SECRET",
    "MAX_PAGE_SIZE",
    "APIStatusError",
    "AudienceMembership",
    "AuthenticationError",
    "BadRequestError",
    "ClientCredentials",
    "ClientStats",
    "Connection",
    "ConnectionType",
    "DataModel",
    "DataModelType",
    "Environment",
    "Identity",
    "IdentityType",
    "InvalidRequestError",
    "LoadTimestampType",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "Pipeline",
    "PipelineRun",
    "PipelineStatus",
    "Profile",
    "ProfileField",
    "RateLimitedError",
    "RequestTimeoutError",
    "RetryPolicy",
    "RunFailedError",
    "RunState",
    "RunType",
    "ScheduleInterval",
    "ServerError",
    "TransportError",
    "TriggerResult",
    "UnknownRunStateError",
    "WaitTimeoutError",
    "WarehouseSyncClient",
    "WarehouseSyncError",
    "WarehouseSyncTimeoutError",
    "WarehouseUnreachableError",
    "clear_token_cache",
]
