"""The code location's defs folder, loaded by ``dg`` (see ``[tool.dg]`` in pyproject.toml).

``warehouse_sync/defs.yaml`` is the registry of synced tables (a ``WarehouseSyncComponent``);
``snowflake_tables.py`` declares the sample warehouse's tables those syncs read, as external assets.
"""
