"""The sample warehouse's tables the syncs read, as external assets (Snowflake table -> sync).

Each carries ``dagster/table_name``. In a project where dbt or Fivetran assets produce these tables,
delete this file: the syncs depend on the same keys (see
``WarehouseSyncTranslator.get_source_asset_key``), so lineage links to those assets instead.
"""

from wsync_dagster.sync.assets.translator import WarehouseSyncTranslator

_translator = WarehouseSyncTranslator()

customer_scores = _translator.get_source_asset_spec("WSYNC_DEMO.CRM.CUSTOMER_SCORES")
ticket_activity = _translator.get_source_asset_spec("WSYNC_DEMO.SUPPORT.TICKET_ACTIVITY")
