"""Each sync asset's source-table dependencies and ``dagster/column_lineage``, from its SQL."""

import warnings

import dagster as dg
import pytest

from wsync_dagster.sync.assets.translator import (
    SourceTablesNotFoundWarning,
    WarehouseSyncProps,
    WarehouseSyncTranslator,
)
from wsync_dagster.sync.registry.specs import Registry, SyncSpec

SCORES = dg.AssetKey(["snowflake", "wsync_demo", "crm", "customer_scores"])


def _spec(registry: Registry, sql: str, sources: list[str] | None = None) -> dg.AssetSpec:
    template = registry.sync("customer_scores")
    spec = SyncSpec.model_validate({**template.model_dump(), "sql": sql, "sources": sources})
    return WarehouseSyncTranslator().get_asset_spec(WarehouseSyncProps(spec, registry))


def _lineage(spec: dg.AssetSpec) -> dict[str, list[tuple[str, str]]]:
    value = spec.metadata["dagster/column_lineage"]
    assert isinstance(value, dg.TableColumnLineage)
    return {
        column: [(d.asset_key.to_user_string(), d.column_name) for d in deps]
        for column, deps in value.deps_by_column.items()
    }


def test_every_sample_sync_declares_each_column_s_source_column(registry: Registry) -> None:
    translator = WarehouseSyncTranslator()
    for spec in registry.syncs:
        asset = translator.get_asset_spec(WarehouseSyncProps(spec, registry))
        lineage = _lineage(asset)
        read = {key for deps in lineage.values() for key, _ in deps}
        assert read == {d.asset_key.to_user_string() for d in asset.deps}, spec.name
        assert spec.load_timestamp.column in lineage, spec.name
    scores = _lineage(translator.get_asset_spec(WarehouseSyncProps(registry.syncs[0], registry)))
    assert scores["customer_id"] == [(SCORES.to_user_string(), "CUSTOMER_ID")]
    assert scores["$firstname"] == [(SCORES.to_user_string(), "FIRST_NAME")]
    assert scores["UPDATED_AT"] == [(SCORES.to_user_string(), "UPDATED_AT")]


def test_quoted_names_keep_their_case_in_columns_and_find_their_table(registry: Registry) -> None:
    spec = _spec(registry, 'SELECT "Email" AS "email", UPDATED_AT FROM "My_DB"."Sch"."Tbl"')
    table = dg.AssetKey(["snowflake", "my_db", "sch", "tbl"])
    assert [d.asset_key for d in spec.deps] == [table]
    assert _lineage(spec)["email"] == [(table.to_user_string(), "Email")]


def test_a_join_keys_each_column_by_its_own_table(registry: Registry) -> None:
    spec = _spec(
        registry,
        'SELECT s.EMAIL AS "email", t.SCORE AS "score", s.UPDATED_AT '
        "FROM CRM.CUSTOMERS s, WSYNC_DEMO.CRM.SCORES t WHERE s.ID = t.ID",
    )
    customers, scores = "snowflake/wsync_demo/crm/customers", "snowflake/wsync_demo/crm/scores"
    assert [d.asset_key.to_user_string() for d in spec.deps] == [customers, scores]
    assert _lineage(spec) == {
        "email": [(customers, "EMAIL")],
        "score": [(scores, "SCORE")],
        "UPDATED_AT": [(customers, "UPDATED_AT")],
    }


def test_lineage_follows_the_translator_s_source_keys(registry: Registry) -> None:
    class DbtKeys(WarehouseSyncTranslator):
        def get_source_asset_key(self, table: str) -> dg.AssetKey:
            return dg.AssetKey(["dbt", table.split(".")[-1].lower()])

    spec = DbtKeys().get_asset_spec(WarehouseSyncProps(registry.syncs[0], registry))
    assert _lineage(spec)["customer_id"] == [("dbt/customer_scores", "CUSTOMER_ID")]


def test_a_table_without_schema_warns_and_sources_place_it(registry: Registry) -> None:
    sql = 'SELECT EMAIL AS "email", UPDATED_AT FROM CUSTOMER_SCORES'
    with pytest.warns(SourceTablesNotFoundWarning, match="sync 'customer_scores'") as warned:
        unplaced = _spec(registry, sql)
    text = str(warned[0].message)
    assert "CUSTOMER_SCORES without a schema" in text and "`sources:`" in text
    assert not unplaced.deps and not _lineage(unplaced)

    with warnings.catch_warnings():
        warnings.simplefilter("error", SourceTablesNotFoundWarning)
        placed = _spec(registry, sql, sources=["wsync_demo.crm.customer_scores"])
    assert [d.asset_key for d in placed.deps] == [SCORES]
    assert _lineage(placed)["email"] == [(SCORES.to_user_string(), "EMAIL")]


def test_sql_sqlglot_cannot_parse_warns_with_its_reason_and_the_fix(registry: Registry) -> None:
    with pytest.warns(SourceTablesNotFoundWarning) as warned:
        spec = _spec(registry, "SELECT EMAIL, UPDATED_AT FROM CRM.T MATCH_NOTHING ((")
    text = str(warned[0].message)
    assert "could not be parsed by sqlglot (" in text and "Line 1" in text
    assert "`sources:`" in text
    assert not spec.deps and _lineage(spec) == {}
