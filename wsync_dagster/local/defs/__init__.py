"""The local code location's defs folder: the sample (``wsync_dagster.local.definitions``).

``warehouse_sync/defs.yaml`` is the demo's registry (nine syncs over the sample warehouse, as a
``WarehouseSyncComponent``); ``snowflake_tables.py`` declares the sample warehouse's tables those
syncs read, as external assets. Loaded like the production defs folder (``wsync_dagster/defs/``),
which ships without any sync.
"""
