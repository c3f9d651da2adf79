"""The production code location's entry point, which ``dg`` loads (``[tool.dg]`` in
pyproject.toml): ``dg check defs``, ``dg list defs``, ``dg dev``.

The defs folder (``wsync_dagster/defs/``) holds the registry of synced tables as a
``WarehouseSyncComponent``; ``WSYNC_TARGET`` chooses the resources (see
:mod:`wsync_dagster.resources`); the local target has its own code location,
``wsync_dagster.local.definitions``.
"""

from wsync_dagster.code_location import build_definitions

__all__ = ["build_definitions", "defs"]

defs = build_definitions()
