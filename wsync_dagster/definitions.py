"""The production code location's entry point, which ``dg`` loads (``[tool.dg]`` in
pyproject.toml): ``dg check defs``, ``dg list defs``, ``dg dev``; and a deployment's code server
(``dagster api grpc -m wsync_dagster.definitions``).

The defs folder (``wsync_dagster/defs/``) holds the team's registries of synced tables, each a
``WarehouseSyncComponent``; it ships without any (see its ``__init__.py``). The real Snowflake and
mParticle are bound through ``dagster.EnvVar`` (:mod:`wsync_dagster.resources`); loading never
fails for a missing setting, a run refuses with one message naming every one. The embedded default
(the sample registry on local stand-ins) is another code location,
``wsync_dagster.local.definitions``. See docs/configuration.md.
"""

from wsync_dagster.code_location import build_definitions

__all__ = ["build_definitions", "defs"]

defs = build_definitions()
