"""The metadata vocabulary (wsync_dagster/sync/assets/metadata.py): one definition per key, read
back typed, and documented exactly as declared (docs/metadata.md)."""

import re
from pathlib import Path

import dagster as dg

from wsync_dagster.sync.assets.metadata import NAMESPACES, MParticle, Preflight

DOC = Path(__file__).resolve().parents[2] / "docs" / "metadata.md"


def test_docs_list_every_key_with_its_meaning_and_nothing_else() -> None:
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", DOC.read_text(encoding="utf-8"), re.M)
    declared = [(str(k), k.meaning) for ns in NAMESPACES for k in ns.declared()]
    assert rows == declared


def test_a_key_is_declared_once_per_namespace() -> None:
    for namespace in NAMESPACES:
        names = [str(k) for k in namespace.declared()]
        assert len(names) == len(set(names)), namespace.__name__


def test_a_key_reads_its_value_back_from_stored_metadata() -> None:
    stored = dg.AssetMaterialization(
        asset_key="a",
        metadata={MParticle.RUN_ID: 42, Preflight.NOTE: "down", MParticle.RUN_TYPE: 7},
    ).metadata
    assert MParticle.RUN_ID.read(stored) == 42  # a MetadataValue, unwrapped
    assert Preflight.NOTE.read(stored) == "down"
    assert MParticle.RUN_TYPE.read(stored) is None  # another type than the key's: not trusted
    assert MParticle.RECORDS_MAPPED.read(stored) is None  # absent
    assert MParticle.RUN_ID.read({"mparticle/run_id": 42}) == 42  # plain strings match too
