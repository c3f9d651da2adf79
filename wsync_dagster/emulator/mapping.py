"""Turn one extracted warehouse row into identities and attributes.

The mapping rules are those of ``docs/warehouse-sync-api.md``.

Rows arrive as the JSON text of ``OBJECT_CONSTRUCT_KEEP_NULL(*)``. They are parsed with numbers kept
as their exact text (``12.5`` stays ``"12.5"``), so attribute values are the warehouse's own rendering.
"""

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

# Reserved user identity columns (lower-case) -> the identity type they set.
USER_IDENTITY_COLUMNS: dict[str, str] = {
    "customerid": "customer_id",
    "customer_id": "customer_id",
    **{
        name: name
        for name in (
            "email",
            "facebook",
            "twitter",
            "google",
            "microsoft",
            "yahoo",
            "facebook_custom_audience_id",
            "other",
            *(f"other_id_{n}" for n in range(2, 11)),
            "mobile_number",
            "phone_number_2",
            "phone_number_3",
        )
    },
}
DEVICE_IDENTITY_COLUMNS: frozenset[str] = frozenset(
    (
        "android_uuid",
        "ios_advertising_id",
        "push_token",
        "ios_idfv",
        "android_advertising_id",
        "amp_id",
        "roku_advertising_id",
        "roku_publisher_id",
        "microsoft_advertising_id",
        "microsoft_publisher_id",
        "fire_advertising_id",
        "mp_deviceid",
    )
)
MPID_COLUMN = "mpid"
# One decoder for every row (building one per json.loads call costs more than the parsing).
_ROW_DECODER = json.JSONDecoder(parse_int=str, parse_float=str)

AttributeValue = str | list[str]


@dataclasses.dataclass(slots=True)
class MappedRow:
    """What one row says about one user: the batch's identities and attributes."""

    mpid: int | None
    user_identities: dict[str, str]
    device_identities: dict[str, str]
    attributes: dict[str, AttributeValue]


def _text(value: Any) -> str:
    """A scalar as mParticle stores it: strings as-is, booleans ``true``/``false``, objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def _attribute(value: Any) -> AttributeValue:
    if isinstance(value, list):
        return [_text(item) for item in value if item is not None]
    return _text(value)


def _parse_mpid(value: str) -> int | None:
    try:
        mpid = int(value)
    except ValueError:
        return None
    return mpid if -(2**63) <= mpid < 2**63 and mpid != 0 else None


@dataclasses.dataclass(frozen=True, slots=True)
class _ColumnPlan:
    """How each column of a result is used, worked out once per set of column names."""

    mpid: str | None
    user: tuple[tuple[str, str], ...]  # (column, identity type)
    device: tuple[tuple[str, str], ...]
    attributes: tuple[str, ...]


class RowMapper:
    """Maps rows of one run. ``timestamp_field`` (the model's load-timestamp column) is skipped."""

    def __init__(self, timestamp_field: str) -> None:
        self._timestamp_field = timestamp_field.lower()
        self._plans: dict[tuple[str, ...], _ColumnPlan] = {}

    def _plan(self, columns: tuple[str, ...]) -> _ColumnPlan:
        mpid: str | None = None
        user: list[tuple[str, str]] = []
        device: list[tuple[str, str]] = []
        attributes: list[str] = []
        for column in columns:
            lowered = column.lower()
            if lowered == self._timestamp_field:
                continue
            if lowered == MPID_COLUMN:
                mpid = column
            elif lowered in USER_IDENTITY_COLUMNS:
                user.append((column, USER_IDENTITY_COLUMNS[lowered]))
            elif lowered in DEVICE_IDENTITY_COLUMNS:
                device.append((column, lowered))
            else:
                attributes.append(column)
        return _ColumnPlan(mpid, tuple(user), tuple(device), tuple(attributes))

    def map_json(self, text: str) -> MappedRow | None:
        """Map one ``OBJECT_CONSTRUCT_KEEP_NULL`` JSON text (numbers kept as their text)."""
        return self.map(_ROW_DECODER.decode(text))

    def map(self, row: dict[str, Any]) -> MappedRow | None:
        """Map one row; ``None`` when it has no identity value (extracted but not mapped)."""
        columns = tuple(row)
        plan = self._plans.get(columns)
        if plan is None:
            plan = self._plans[columns] = self._plan(columns)
        user = _identities(row, plan.user)
        device = _identities(row, plan.device)
        mpid = (
            _parse_mpid(_text(row[plan.mpid])) if plan.mpid and row[plan.mpid] is not None else None
        )
        if not user and not device and mpid is None:
            return None
        attributes = {
            column: _attribute(row[column]) for column in plan.attributes if row[column] is not None
        }
        return MappedRow(mpid, user, device, attributes)


def _identities(row: dict[str, Any], columns: Iterable[tuple[str, str]]) -> dict[str, str]:
    identities: dict[str, str] = {}
    for column, identity_type in columns:
        value = row[column]
        if value is None:
            continue
        text = _text(value).strip()
        if text:
            identities[identity_type] = text
    return identities
