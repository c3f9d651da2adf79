"""Request/response examples documented in shared/spec/warehouse-sync-api.md, each with its section.

Values that only make sense on mParticle's side (ids, times) are compared by shape, not value.
"""

from typing import Any

# §1: token request body, and the success body (shape; the token is opaque).
TOKEN_REQUEST = {
    "client_id": "...",
    "client_secret": "...",
    "audience": "https://api.mparticle.com",
    "grant_type": "client_credentials",
}
TOKEN_RESPONSE = {"access_token": "<opaque>", "expires_in": 28800, "token_type": "Bearer"}

# §7 #19: token errors (Auth0 shapes).
TOKEN_ACCESS_DENIED = {"error": "access_denied", "error_description": "Unauthorized"}

# §2.2: example response of a Snowflake connection.
CONNECTION_RESPONSE: dict[str, Any] = {
    "id": "example-connection",
    "name": "Example Connection",
    "workspace_id": 1234,
    "is_faulted": False,
    "type": "snowflake",
    "source_account_id": "gd1234",
    "region": "us-central1.gcp",
    "warehouse": "compute_wh",
    "database": "mp",
    "role": "mp_role",
    "user": "mp_user",
    "password": "************",
    "snowflake_aws_iam_user_arn": "arn:aws:iam::123456:user/externalstages/abcdefg",
    "snowflake_aws_external_id": "GD1234=2_abcdefg=",
    "created_on": "2022-10-19T17:08:10.013",
    "created_by": "developer@mparticle.com",
    "last_modified_on": None,
    "last_modified_by": None,
}

# §2.3 fields with the example spellings of the tz/offset fields (examples use 0 and 1800).
DATA_MODEL_FIELDS = (
    "id",
    "name",
    "workspace_id",
    "type",
    "sql_query",
    "load_timestamp_field_name",
    "load_timestamp_field_type",
    "load_timestamp_field_time_zone",
    "load_timestamp_field_time_offset",
    "created_on",
    "created_by",
    "last_modified_on",
    "last_modified_by",
)

# §2.4: pipeline create body as documented (faulted_reason null, key, no schedule_start_time); the
# response adds partner_feed_id, masks the key and fills schedule_start_time.
PIPELINE_CREATE_BODY: dict[str, Any] = {
    "id": "example-pipeline",
    "name": "Example Pipeline",
    "workspace_id": 5328,
    "is_active": True,
    "is_draft": False,
    "faulted_reason": None,
    "connection_id": "example-connection",
    "data_model_id": "example-data-model",
    "partner_feed_key": "us1-1234567",
    "schedule_interval": "hourly",
    "environment": "development",
}
PIPELINE_RESPONSE_FIELDS = (
    "id",
    "name",
    "workspace_id",
    "is_active",
    "is_draft",
    "is_faulted",
    "faulted_reason",
    "connection_id",
    "data_model_id",
    "partner_feed_id",
    "partner_feed_key",
    "schedule_start_time",
    "schedule_end_time",
    "schedule_interval",
    "environment",
    "created_on",
    "created_by",
    "last_modified_on",
    "last_modified_by",
)

# §2.4: trigger success body, and the documented error while a run is in progress.
TRIGGER_RESPONSE = {"pipeline_run_id": 13325, "status": "trigger_requested"}
ALREADY_IN_PROGRESS = {
    "statusCode": 400,
    "errors": [{"message": "Pipeline example-pipeline is already in progress."}],
}

# §2.5: status body (latest_pipeline_run is a run object).
STATUS_FIELDS = (
    "pipeline_id",
    "workspace_id",
    "is_faulted",
    "is_connection_faulted",
    "is_connection_active",
    "is_active",
    "latest_pipeline_run",
)
RUN_FIELDS = (
    "pipeline_run_id",
    "id",
    "workspace_id",
    "logical_date",
    "start_date",
    "end_date",
    "data_interval_start",
    "data_interval_end",
    "pipeline_run_type",
    "pipeline_run_state",
    "is_externally_triggered",
    "records_extracted",
    "records_mapped",
    "event_batches_generated",
    "created_on",
    "created_by",
    "last_modified_on",
    "last_modified_by",
)

# §2.4: the trigger worked example. Pipeline start 2023-02-01 00:00:00Z; triggers at
# 2023-02-04 08:30:17Z and 2023-02-08 12:05:45Z (the doc's ...08:30:11Z is a typo, §7 #4).
TRIGGER_EXAMPLE = {
    "start": "2023-02-01T00:00:00Z",
    "created": "2023-02-01T15:13:22Z",
    "triggers": [
        ("2023-02-04T08:30:17Z", "2023-02-01T00:00:00Z", "2023-02-04T08:30:17Z"),
        ("2023-02-08T12:05:45Z", "2023-02-04T08:30:17Z", "2023-02-08T12:05:45Z"),
    ],
}

# §5.1: resolve body, and the profile response shape.
RESOLVE_BODY = {
    "environment_type": "production",
    "identity": {"type": "customer_id", "value": "12345"},
}
PROFILE_RESPONSE: dict[str, Any] = {
    "mpid": 9080350317581165000,
    "created_timestamp_ms": 1574704283462,
    "last_stored_timestamp_ms": 1575301484215,
    "is_opted_out": False,
    "limit_ad_tracking": None,
    "device_identities": [{"type": "android_id", "encoding": "none", "value": "..."}],
    "user_identities": [
        {"type": "customer_id", "encoding": "none", "value": "..."},
        {"type": "email", "encoding": "none", "value": "..."},
    ],
    "account_userattributes": None,
    "user_attributes": {
        "churn_risk_score": "4",
        "ml_product_recs": ["123849", "294933"],
        "$firstname": "Marky",
    },
    "audience_memberships": [
        {"audience_id": 17802, "audience_name": "...", "expiration_timestamp_ms": None}
    ],
}
