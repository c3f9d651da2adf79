"""Typed client for mParticle's experimental Warehouse Sync API and the Profile API (no Dagster).

Example::

    from wsync_dagster.mparticle import ClientCredentials, WarehouseSyncClient

    credentials = ClientCredentials(client_id="...", client_secret="...")
    with WarehouseSyncClient(credentials, workspace_id=5328) as client:
        result = client.trigger_pipeline("orders-pipeline")
        run = client.wait_for_run("orders-pipeline", result.pipeline_run_id, timeout=1800)
"""

from wsync_dagster.mparticle.auth import ClientCredentials, clear_token_cache
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
    TimeoutError,
    TransportError,
    UnknownRunStateError,
    WaitTimeoutError,
    WarehouseSyncError,
    WarehouseUnreachableError,
)
from wsync_dagster.mparticle.models import (
    MASKED_SECRET,
    AudienceMembership,
    Connection,
    ConnectionType,
    DataModel,
    DataModelType,
    Environment,
    Identity,
    IdentityType,
    LoadTimestampType,
    Pipeline,
    PipelineRun,
    PipelineStatus,
    Profile,
    ProfileField,
    RunState,
    RunType,
    ScheduleInterval,
    TriggerResult,
)
from wsync_dagster.mparticle.retries import RetryPolicy

__all__ = [
    "MASKED_SECRET",
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
    "TimeoutError",
    "TransportError",
    "TriggerResult",
    "UnknownRunStateError",
    "WaitTimeoutError",
    "WarehouseSyncClient",
    "WarehouseSyncError",
    "WarehouseUnreachableError",
    "clear_token_cache",
]
