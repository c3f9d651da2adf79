"""The profile store behind the Profile API (see ``docs/warehouse-sync-api.md``).

Rows upsert the profile found by one of their identities, in the order ``mpid``, ``customer_id``,
``email``, the other user identities, then device identities; a row that matches none creates a
profile with a fresh signed 64-bit MPID from a seeded generator (so a rerun after a reset assigns
the same MPIDs). An identity value belongs to one profile: a row that gives it to another profile
moves it there.
"""

import random
from collections.abc import Iterator
from typing import Any

from wsync_dagster.emulator.mapping import (
    DEVICE_IDENTITY_COLUMNS,
    USER_IDENTITY_COLUMNS,
    AttributeValue,
    MappedRow,
)

PROFILE_FIELDS = (
    "device_identities",
    "user_identities",
    "user_attributes",
    "audience_memberships",
    "attribution",
)
# Identity types in the order a row's identities are tried when looking for its profile.
USER_IDENTITY_ORDER: tuple[str, ...] = tuple(dict.fromkeys(USER_IDENTITY_COLUMNS.values()))
DEVICE_IDENTITY_ORDER: tuple[str, ...] = tuple(sorted(DEVICE_IDENTITY_COLUMNS))

_IdentityKey = tuple[bool, str, str]  # (is_device, type, value)


class Profile:
    """One user: MPID, identities, attributes and the times it was created and last written."""

    __slots__ = (
        "attributes",
        "created_ms",
        "device_identities",
        "last_stored_ms",
        "mpid",
        "user_identities",
    )

    def __init__(self, mpid: int, now_ms: int) -> None:
        self.mpid = mpid
        self.user_identities: dict[str, str] = {}
        self.device_identities: dict[str, str] = {}
        self.attributes: dict[str, AttributeValue] = {}
        self.created_ms = now_ms
        self.last_stored_ms = now_ms

    def to_json(self, fields: tuple[str, ...] = PROFILE_FIELDS) -> dict[str, Any]:
        """The Profile API body, with only the requested ``fields`` among the optional parts."""
        body: dict[str, Any] = {
            "mpid": self.mpid,
            "created_timestamp_ms": self.created_ms,
            "last_stored_timestamp_ms": self.last_stored_ms,
            "is_opted_out": False,
            "limit_ad_tracking": None,
        }
        if "device_identities" in fields:
            body["device_identities"] = _identity_list(self.device_identities)
        if "user_identities" in fields:
            body["user_identities"] = _identity_list(self.user_identities)
        if "user_attributes" in fields:
            body["account_userattributes"] = None
            body["user_attributes"] = {
                name: list(value) if isinstance(value, list) else value
                for name, value in self.attributes.items()
            }
        if "audience_memberships" in fields:
            body["audience_memberships"] = []
        if "attribution" in fields:
            body["attribution"] = []
        return body


def _identity_list(identities: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"type": kind, "encoding": "none", "value": value} for kind, value in identities.items()
    ]


class ProfileStore:
    """Profiles by MPID plus an index from every identity value to its profile. Not thread-safe:
    the backend calls it under its lock."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self.reset()

    def reset(self) -> None:
        self._rng = random.Random(self._seed)
        self._profiles: dict[int, Profile] = {}
        self._index: dict[_IdentityKey, int] = {}

    def generator_state(self) -> list[Any]:
        """The MPID generator's state as JSON-ready data (see :mod:`wsync_dagster.emulator.state`)."""
        version, internal, gauss = self._rng.getstate()
        return [version, list(internal), gauss]

    def restore(self, profiles: list[Profile], generator: list[Any]) -> None:
        """Replace every profile (the identity index is rebuilt) and the MPID generator's state."""
        self._profiles = {profile.mpid: profile for profile in profiles}
        self._index = {}
        for profile in profiles:
            for is_device, identities in (
                (False, profile.user_identities),
                (True, profile.device_identities),
            ):
                for kind, value in identities.items():
                    self._index[(is_device, kind, value)] = profile.mpid
        version, internal, gauss = generator
        self._rng.setstate((version, tuple(internal), gauss))

    def __len__(self) -> int:
        return len(self._profiles)

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles.values())

    def get(self, mpid: int) -> Profile | None:
        return self._profiles.get(mpid)

    def resolve(self, identity_type: str, value: str) -> Profile | None:
        mpid = self._index.get((False, identity_type, value))
        return None if mpid is None else self._profiles[mpid]

    def _new_mpid(self) -> int:
        while True:
            mpid = self._rng.getrandbits(64) - 2**63
            if mpid != 0 and mpid not in self._profiles:
                return mpid

    def _find(self, row: MappedRow) -> Profile | None:
        if row.mpid is not None and (found := self._profiles.get(row.mpid)) is not None:
            return found
        for is_device, order, identities in (
            (False, USER_IDENTITY_ORDER, row.user_identities),
            (True, DEVICE_IDENTITY_ORDER, row.device_identities),
        ):
            for kind in order:
                value = identities.get(kind)
                if (
                    value is not None
                    and (mpid := self._index.get((is_device, kind, value))) is not None
                ):
                    return self._profiles[mpid]
        return None

    def upsert(self, row: MappedRow, now_ms: int) -> Profile:
        """Write one mapped row onto its profile (created when no identity matches)."""
        profile = self._find(row)
        if profile is None:
            mpid = row.mpid if row.mpid is not None else self._new_mpid()
            profile = self._profiles[mpid] = Profile(mpid, now_ms)
        self._assign(profile, False, profile.user_identities, row.user_identities)
        self._assign(profile, True, profile.device_identities, row.device_identities)
        profile.attributes.update(row.attributes)
        profile.last_stored_ms = now_ms
        return profile

    def _assign(
        self, profile: Profile, is_device: bool, current: dict[str, str], new: dict[str, str]
    ) -> None:
        for kind, value in new.items():
            old = current.get(kind)
            if old == value:
                continue
            if old is not None:
                del self._index[(is_device, kind, old)]
            owner = self._index.get((is_device, kind, value))
            if owner is not None and owner != profile.mpid:
                other = self._profiles[owner]
                del (other.device_identities if is_device else other.user_identities)[kind]
            self._index[(is_device, kind, value)] = profile.mpid
            current[kind] = value
