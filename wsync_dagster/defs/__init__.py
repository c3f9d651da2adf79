"""The production code location's defs folder, loaded by ``dg`` (``[tool.dg]`` in pyproject.toml).

It ships with no synced table, so a deployment of this package cannot write to an mParticle
workspace until a team declares its own. Add a registry with

    dg scaffold defs wsync_dagster.WarehouseSyncComponent <name>

which writes ``<name>/defs.yaml`` here, or copy ``example.defs.yaml`` (every line commented)
to ``<name>/defs.yaml`` and edit it. Each ``defs.yaml`` becomes a ``WarehouseSyncComponent``; Python
files here are loaded too (e.g. external assets for the Snowflake tables the syncs read).

The sample registry the demo runs lives in the local code location's defs folder,
``wsync_dagster/local/defs/``.
"""
