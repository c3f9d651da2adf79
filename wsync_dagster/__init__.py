"""wsync_dagster: keep Snowflake tables synced into mParticle profiles, as Dagster assets.

``wsync_dagster.WarehouseSyncComponent`` (the ``type`` of a ``defs.yaml``) and
``wsync_dagster.WarehouseSyncTranslator`` are imported on first use, so importing the package (and
its dagster-free client, :mod:`wsync_dagster.mparticle`) does not import Dagster.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsync_dagster.component import WarehouseSyncComponent
    from wsync_dagster.sync.assets.translator import WarehouseSyncTranslator

__all__ = ["WarehouseSyncComponent", "WarehouseSyncTranslator"]


def __getattr__(name: str) -> Any:
    if name == "WarehouseSyncComponent":
        from wsync_dagster.component import WarehouseSyncComponent

        return WarehouseSyncComponent
    if name == "WarehouseSyncTranslator":
        from wsync_dagster.sync.assets.translator import WarehouseSyncTranslator

        return WarehouseSyncTranslator
    raise AttributeError(f"module 'wsync_dagster' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
