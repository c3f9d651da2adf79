"""The production code location's entry point: ``dagster dev -m wsync_dagster.definitions``.

``WSYNC_TARGET`` chooses the resources (see :mod:`wsync_dagster.resources`); the local target has its
own code location, ``wsync_dagster.local.definitions``.
"""

from wsync_dagster.code_location import build_definitions

__all__ = ["build_definitions", "defs"]

defs = build_definitions()
